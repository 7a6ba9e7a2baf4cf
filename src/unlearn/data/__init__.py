"""Data: QA records and their validation, benchmark loaders, chat formatting, forget/retain/IDK pairing."""

from unlearn.data.records import QARecord

__all__ = ["QARecord"]
