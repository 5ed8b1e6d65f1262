"""What every destination kind's spec is: a declared place, and what it can grant.

A kind's spec (``ppipe/destinations/<kind>/spec.py``) subclasses :class:`DestinationSpec`:
its ``kind`` tag, its fields, where one challenge's releases go (:meth:`location`) and its
capabilities as class attributes, from which the challenge model's grant checks derive.
"""

from __future__ import annotations

from typing import ClassVar

from ppipe.validation import Model


class DestinationSpec(Model):
    """One place releases go, as declared in a challenge file (``kind: <tag>``)."""

    kind: str
    #: Whether participants can be given read access here (``grants:`` of this service).
    can_grant: ClassVar[bool] = False
    #: Roles a grant may name (``reader`` first): read roles only, grants never let anyone write.
    roles: ClassVar[tuple[str, ...]] = ()
    #: A prefix under which any provider role is accepted too (none: only ``roles`` are).
    role_prefix: ClassVar[str | None] = None
    #: Forms a grant may take (``via``); the first is the default. Empty: ``via`` is refused.
    grant_forms: ClassVar[tuple[str, ...]] = ()
    #: Whether a grant may ask the provider to notify the participant (``notify``).
    notifies: ClassVar[bool] = False

    def location(self, challenge: str) -> str:
        """The URI where this challenge's releases go (derived names included)."""
        raise NotImplementedError

    @classmethod
    def check_identity(cls, identity: str, via: str | None = None) -> str:
        """The participant identity, normalised; ValueError saying why when it is malformed."""
        raise ValueError(f"{cls.model_fields['kind'].default} destinations take no grants")

    @classmethod
    def check_role(cls, role: str) -> str:
        """``role`` if a grant on this kind may use it; ValueError naming the allowed ones otherwise."""
        if role in cls.roles or (cls.role_prefix and role.startswith(cls.role_prefix)):
            return role
        raise ValueError(f"{role!r} is not a read role for {cls.tag()}: use {', '.join(sorted(cls.roles))}")

    @classmethod
    def tag(cls) -> str:
        """The ``kind:`` tag of this spec class."""
        return cls.model_fields["kind"].default
