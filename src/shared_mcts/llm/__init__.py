"""Running language models: backends (llama.cpp in this process, OpenAI-compatible endpoints;
a registry in backends.py), the caller that spends a model's budget safely (retries, journal,
replay) and the answer cache. What to ask a model and how to read its answer is the LLM
proposer's (proposers/llm/)."""
