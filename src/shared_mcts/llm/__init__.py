"""LLM proposers: model specs and the models file, prompts, answer parsing, backends.

Work in progress (issue 4): config.py, prompt.py and parse.py are done and tested; the
backends (llama.cpp for the embedded SmolLM2, OpenAI-compatible) and the LLM proposer that
joins them to the search are not built yet.
"""
