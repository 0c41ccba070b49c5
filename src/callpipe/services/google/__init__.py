"""Google services (Gemini) over the REST API, without the google-genai SDK at run time."""
