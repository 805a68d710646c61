"""Class mode's settings and roles: who is an instructor, decided from the identity provider's claims alone.

Class mode is on when `.streamlit/secrets.toml` holds an `[auth]` section (Streamlit's own `st.login` reads it);
the course's own class settings sit beside it under `[course]`:

    [course]
    instructors = ["prof@example.edu"]        # by email, compared case-blind
    instructor_claim = "groups"               # and/or by a claim the provider sends ...
    instructor_claim_value = "llm-instructors"  # ... holding this value (a string, or one item of a list)

No Streamlit here: `ui/auth.py` reads the secrets and `st.user`, and asks this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ClassSettings(BaseModel):
    """The `[course]` section of secrets.toml (every field optional: a class may have no instructor yet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instructors: tuple[str, ...] = Field(default=(), description="instructors' emails")
    instructor_claim: str | None = Field(default=None, description="a claim naming instructors, e.g. groups")
    instructor_claim_value: str | None = Field(default=None, description="the value that claim holds for them")

    @model_validator(mode="after")
    def _claim_and_value_together(self) -> ClassSettings:
        if (self.instructor_claim is None) != (self.instructor_claim_value is None):
            raise ValueError("give instructor_claim and instructor_claim_value together, or neither")
        return self

    def is_instructor(self, claims: Mapping[str, Any]) -> bool:
        """Whether the signed-in person these claims describe is an instructor.

        >>> s = ClassSettings(instructors=("Prof@Example.edu",), instructor_claim="groups",
        ...                   instructor_claim_value="teachers")
        >>> s.is_instructor({"email": "prof@example.edu"}), s.is_instructor({"groups": ["a", "teachers"]})
        (True, True)
        >>> s.is_instructor({"email": "ann@example.edu", "groups": "students"})
        False
        """
        email = claims.get("email")
        if isinstance(email, str) and email.casefold() in {e.casefold() for e in self.instructors}:
            if claims.get("email_verified", True) is not False:  # a provider that says unverified is not trusted
                return True
        if self.instructor_claim is not None:
            held = claims.get(self.instructor_claim)
            values = held if isinstance(held, list | tuple) else [held]
            return self.instructor_claim_value in [str(v) for v in values if v is not None]
        return False


def settings_from(section: Mapping[str, Any] | None) -> ClassSettings:
    """The settings from secrets.toml's `[course]` section (None or empty: no instructors named). Raises
    pydantic's ValidationError, which names the bad field, for a section that does not fit."""
    return ClassSettings.model_validate(dict(section or {}))
