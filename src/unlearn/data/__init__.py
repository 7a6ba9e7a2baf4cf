"""Data: QA records and their validation, benchmark loaders, chat formatting, forget/retain/IDK pairing, and the
batch parts a method reads (:mod:`.parts`)."""

from unlearn.data.records import QARecord

__all__ = ["QARecord"]
