"""The development runner: ``python bot.py -t twilio -x my.domain`` serves a phone bot.

``callpipe.runner.run.main()`` is the CLI; ``callpipe.runner.app.create_app()`` the FastAPI app
factory; ``callpipe.runner.utils`` holds ``parse_telephony_websocket`` and ``create_transport``;
``callpipe.runner.types`` the ``RunnerArguments`` handed to ``bot()``. Nothing is imported here
so that ``import callpipe.runner.types`` stays light.
"""
