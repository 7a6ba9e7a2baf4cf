"""Scenarios: compositions of the finetune / unlearn / evaluate stages (`unlearn scenario NAME`)."""
