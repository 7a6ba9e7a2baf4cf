"""Models: loading by Hugging Face name, local directory or GGUF file; tiny models built from a config."""
