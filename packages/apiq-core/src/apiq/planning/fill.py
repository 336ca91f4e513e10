"""Arguments from the words of a clause: which value of the text goes to which slot.

Rules, strongest first; each value of the text is used once:

1. `owner/repo` fills two path parameters that follow each other (`/repos/{owner}/{repo}`);
2. a value the schema enumerates, written in the text (`available`, `open`), or the past
   participle of the clause's verb (`close` -> `closed`);
3. a value after the slot's name (`status sold`, `limit 5`, `per page 10`, `to +1555...`),
   and after `named` / `called` / `titled` for a `name` or `title` slot;
4. an email, URL, phone number or date for a slot of that format or name;
5. a value after the noun the slot is named for (`pet 5` for `petId`, `issue #12` for
   `issue_number`, `customer cus_1` for `customer`), or a word just before it (`the acme
   organization` for `org`);
6. for a required slot still empty, the first value of the text that fits it; a required
   search slot (`q`, `query`) takes the words that do not describe the operation itself;
7. quoted text still unplaced goes to a `name`, `title`, `text`, `message`, `body`, ... slot.

Rules 1 to 4 live here, 5 to 7 in `apiq.planning.nouns`. Every value is converted to the
slot's type and checked against its schema first (`apiq.planning.values.accept`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apiq.catalog.models import Operation
from apiq.planning.nouns import NearbyValues
from apiq.planning.rank import operation_words
from apiq.planning.reading import LINKS, NAMING, PATH_WORDS, RENAMING, SETTERS, Filled, plain
from apiq.planning.shapes import Slot
from apiq.planning.values import Mention, accept, value_kind
from apiq.planning.words import GENERIC_NOUNS, STOP_WORDS, identifier_words

__all__ = ["Filled", "fill_from_text"]


class _Filler(NearbyValues):
    """Rules 1 to 4 (module docstring) on top of the nearby-value rules."""

    def pairs(self) -> None:
        path = self.operation.path
        by_name = {s.name: s for s in self.slots if s.location == "path"}
        for token in self.tokens:
            parts = token.text.split("/")
            if token.kind != "pair" or len(parts) != 2 or token.index in self.claimed:
                continue
            before = self.tokens[token.index - 1].word if token.index else ""
            if before in PATH_WORDS:
                continue  # `the file src/app.py` is a path, not an owner and a repo
            for first, second in zip(list(by_name), list(by_name)[1:], strict=False):
                if f"{{{first}}}/{{{second}}}" not in path or by_name[first] in self.filled:
                    continue
                one, two = (Mention("id", part, token.index) for part in parts)
                a, b = (
                    accept(by_name[first], one, plain=True),
                    accept(by_name[second], two, plain=True),
                )
                if a is not None and b is not None:
                    reason = f"from '{token.text}'"
                    self.take(by_name[first], a, reason, token.index)
                    self.take(by_name[second], b, reason)
                    break

    def enums(self) -> None:
        verb = self.verb
        own_words = operation_words(self.operation)
        for slot in self.slots:
            if slot in self.filled or not slot.enum:
                continue
            named = self.name_end(slot) is not None
            values: list[Any] = []
            used: list[int] = []
            for token in self.tokens:
                common = token.word in STOP_WORDS or token.word in GENERIC_NOUNS
                if token.index in self.claimed or (common and not named) or len(token.word) < 2:
                    continue
                if not named and (token.word == verb or token.word in own_words):
                    # `merge it` asks for no merge_method; `payment link` for no `link` type
                    continue
                found = accept(slot, token)
                if found is not None and found not in values:
                    values.append(found)
                    used.append(token.index)
            if values:
                picked = used if slot.kind == "array" else used[:1]
                # an array slot took each value as a one-item list
                value = [v for one in values for v in one] if slot.kind == "array" else values[0]
                shown = ", ".join(repr(self.tokens[i].text) for i in picked)
                self.take(slot, value, f"{shown}: one of its values", *picked)
            elif verb is not None:
                for form in _participles(verb):
                    value = accept(slot, Mention("word", form, -1))
                    if value is not None:
                        self.take(slot, value, f"'{form}' from the verb '{verb}'")
                        break

    def named(self) -> None:
        verb = self.verb
        for slot in self.slots:
            if slot in self.filled:
                continue
            end = self.name_end(slot)
            if end is None:
                continue
            content = slot.name.lower() not in STOP_WORDS
            index = end + 1
            while (
                (token := self.free(index)) is not None
                and token.word in LINKS - {"of"}  # `the topic of #general` is no topic
                and index < end + 3
            ):
                index += 1
            after = self.free(index)
            if verb in SETTERS and after is not None and after.word == "of":
                # `set the topic of #general to 'Planning'`: the value follows `to`
                index = next((t.index + 1 for t in self.tokens[end:] if t.word == "to"), index)
            token = self.free(index)
            if token is not None and (token.kind != "word" or plain(token)):
                value = accept(slot, token, plain=content)
                if value is not None:
                    self.take(slot, value, f"from '{self.snippet(end, index)}'", index)
        for token in self.tokens:
            target = NAMING.get(token.word)
            if token.word == "to" and verb in RENAMING:
                target = RENAMING[verb]
            value_token = self.free(token.index + 1)
            if target is None or value_token is None:
                continue
            for slot in self.slots:
                words = identifier_words(slot.name)
                if slot not in self.filled and words and words[-1] == target:
                    value = accept(slot, value_token, plain=plain(value_token))
                    if value is not None:
                        where = f"from '{token.text} {value_token.text}'"
                        self.take(slot, value, where, value_token.index)
                        break

    def typed(self) -> None:
        for slot in self.slots:
            kind = value_kind(slot)
            if slot in self.filled or kind is None:
                continue
            for token in self.tokens:
                if token.kind == kind and token.index not in self.claimed:
                    value = accept(slot, token)
                    if value is not None:
                        self.take(slot, value, f"the {kind} in the request", token.index)
                        break


def fill_from_text(
    text: str, slots: Sequence[Slot], operation: Operation, *, verb: str | None = None
) -> dict[Slot, Filled]:
    """Slot -> value for every slot the text of one clause gives a value (module docstring).

    Args:
        text: The clause.
        slots: What the operation takes (`apiq.planning.shapes.slots_of`).
        operation: The operation, for its path template.
        verb: The clause's leading action verb, if any (for enum participles).
    """
    filler = _Filler(text, slots, operation, verb)
    filler.pairs()
    filler.enums()
    filler.named()
    filler.typed()
    filler.nouns()
    filler.prefixed_ids()
    filler.leftovers()
    filler.quoted_text()
    return filler.filled


def _participles(verb: str) -> list[str]:
    """`close` -> closed; `cancel` -> canceled, cancelled; `archive` -> archived."""
    if verb.endswith("e"):
        return [verb + "d"]
    if verb.endswith("y"):
        return [verb[:-1] + "ied"]
    return [verb + "ed", verb + verb[-1] + "ed"]
