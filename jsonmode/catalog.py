"""Ready-made Pydantic models for common extraction and labelling jobs.

Each has a JSON Schema twin in ``schemas/`` (kept equal by a test), for users who
work from raw schemas or other languages.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

ShortText = Annotated[str, Field(max_length=32)]


class Character(BaseModel):
    """A fictional character (the Hermes JSON-mode example), with bounded strings and lists."""

    name: str = Field(max_length=64)
    species: str = Field(max_length=48)
    role: str = Field(max_length=48)
    personality_traits: list[ShortText] | None = Field(default=None, max_length=5)
    special_attacks: list[ShortText] | None = Field(default=None, max_length=5)


class Address(BaseModel):
    street: str = Field(max_length=100)
    city: str = Field(max_length=60)
    country: str = Field(max_length=60)
    postal_code: str | None = Field(default=None, max_length=12)


class Person(BaseModel):
    """A person record extracted from free text."""

    name: str = Field(max_length=100)
    age: int | None = Field(default=None, ge=0, le=150)
    email: str | None = Field(default=None, max_length=120)
    address: Address | None = None


class LineItem(BaseModel):
    description: str = Field(max_length=120)
    quantity: int = Field(ge=1, le=100000)
    unit_price: float = Field(ge=0)


class Invoice(BaseModel):
    """An invoice extracted from a document."""

    invoice_number: str = Field(max_length=40)
    issue_date: dt.date
    vendor: str = Field(max_length=100)
    currency: Literal["USD", "EUR", "GBP", "JPY", "CHF", "other"]
    items: list[LineItem] = Field(min_length=1, max_length=20)
    total: float = Field(ge=0)


class Sentiment(BaseModel):
    """A sentiment label for one text (data-labelling pipelines)."""

    label: Literal["positive", "negative", "neutral"]
    confidence: Literal["low", "medium", "high"]


class Topic(str, Enum):
    business = "business"
    politics = "politics"
    science = "science"
    sports = "sports"
    technology = "technology"
    entertainment = "entertainment"
    other = "other"


class TopicLabel(BaseModel):
    """A topic label for one text."""

    topic: Topic


class TicketLabels(BaseModel):
    """Every label that applies to one support ticket (multi-label classification), each once."""

    labels: set[Literal["billing", "bug", "feature-request", "account", "urgent", "spam", "other"]] = Field(
        min_length=1, max_length=4)


CATALOG: dict[str, type[BaseModel]] = {
    "character": Character,
    "person": Person,
    "invoice": Invoice,
    "sentiment": Sentiment,
    "topic": TopicLabel,
    "ticket-labels": TicketLabels,
}
