"""One training loop on Hugging Face Accelerate, shared by fine-tuning and unlearning."""
