"""Replacing one method of a class and putting it back: how the local simulation changes moto
where moto lacks what AWS does (pinned moto; each patch has its test)."""

from __future__ import annotations

from typing import Any


class MethodPatch:
    def __init__(self, cls: type, name: str, replacement: Any) -> None:
        self.cls, self.name, self.replacement = cls, name, replacement
        self.original: Any = None

    def install(self) -> None:
        self.original = getattr(self.cls, self.name)
        setattr(self.cls, self.name, self.replacement)

    def uninstall(self) -> None:
        if self.original is not None:
            setattr(self.cls, self.name, self.original)
            self.original = None
