"""Google services: Gemini (``llm``, ``gemini_live``) over its REST and Live APIs without the
google-genai SDK at run time; Cloud Text-to-Speech over REST (``GoogleHttpTTSService``) or gRPC
streaming (``GoogleTTSService``, ``GeminiTTSService``), and Cloud Speech-to-Text v2 streaming
(``GoogleSTTService``) through Google's SDKs (extra ``google``)."""
