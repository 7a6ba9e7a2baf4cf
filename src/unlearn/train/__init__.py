"""One training loop on Hugging Face Accelerate, shared by fine-tuning, unlearning and the studies."""
