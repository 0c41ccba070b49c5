"""Azure OpenAI: LLM over the Azure OpenAI chat completions API."""
