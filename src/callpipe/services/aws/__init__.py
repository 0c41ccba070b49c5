"""Amazon Web Services: Polly text-to-speech over its REST API, signed with botocore's SigV4
(``pip install 'callpipe[aws]'``)."""
