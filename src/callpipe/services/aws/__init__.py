"""Amazon Web Services: Polly text-to-speech and Bedrock's Converse API over their REST APIs,
and Transcribe's streaming speech-to-text over its presigned WebSocket, all signed with
botocore's SigV4 (``pip install 'callpipe[aws]'``)."""
