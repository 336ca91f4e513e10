"""Argument rules 5 to 7 (`apiq.planning.fill`): values beside a noun, prefixed ids, leftovers.

- a value after the noun a slot is named for (`pet 5` for `petId`, `issue #12` for
  `issue_number`, `customer cus_1` for `customer`), or a word just before it (`the acme
  organization` for `org`);
- an id whose prefix abbreviates what a slot names (`cus_4` -> customer, `pi_3x` ->
  payment_intent);
- for a required slot still empty, the first value of the text that fits it; a required
  search slot (`q`, `query`) takes the words that do not describe the operation itself;
- quoted text still unplaced goes to a `name`, `title`, `text`, `message`, ... slot.
"""

from __future__ import annotations

from apiq.planning.rank import operation_words
from apiq.planning.reading import (
    LINKS,
    PATH_WORDS,
    PREPOSITIONS,
    SEARCH_NAMES,
    SECRET_WORDS,
    TEXT_SLOTS,
    Filled,
    Reading,
    plain,
)
from apiq.planning.shapes import Slot, slot_nouns
from apiq.planning.values import STRONG_KINDS, Mention, abbreviates, accept, id_prefix
from apiq.planning.words import (
    ID_WORDS,
    STOP_WORDS,
    VERB_METHODS,
    identifier_words,
    matches,
    singular,
)

__all__ = ["NearbyValues"]


class NearbyValues(Reading):
    """The rules that place values by what is next to them, and what is left over."""

    def nouns(self) -> None:
        for slot in self.slots:
            if slot in self.filled:
                continue
            nouns = slot_nouns(slot, self.operation.path)
            for token in self.tokens:
                if token.kind != "word" or not any(matches(token.word, n, 3) for n in nouns):
                    continue
                found = self.after_noun(slot, token.index) or self.before_noun(slot, token.index)
                if found is not None:
                    value, index = found
                    snippet = self.snippet(token.index, index)
                    self.take(slot, value, f"from '{snippet}'", index, token.index)
                    break

    def after_noun(self, slot: Slot, noun: int) -> tuple[object, int] | None:
        skipped = 0
        for index in range(noun + 1, min(noun + 5, len(self.tokens))):
            token = self.free(index)
            if token is None:
                return None
            word = token.kind == "word"
            if word and token.word in PREPOSITIONS:
                return None  # `link for price price_3`: what follows `for` is the price's
            if word and (token.word in LINKS or token.word in ID_WORDS or token.word in STOP_WORDS):
                continue
            # `user theuser` names one user; after `users` a word is no name (`users located`),
            # nor is a word of the operation's own name (`workflow runs`)
            one = self.tokens[noun].word == singular(self.tokens[noun].word)
            own = singular(token.word) in operation_words(self.operation)
            if not word or (index == noun + 1 and one and not own and plain(token)):
                value = accept(slot, token, plain=word)
                if value is not None:
                    return value, index
                if not word:
                    return None
            skipped += 1
            if skipped > 1:
                return None
        return None

    def before_noun(self, slot: Slot, noun: int) -> tuple[object, int] | None:
        token = self.free(noun - 1)
        bare = (
            slot.location == "path"
            and token is not None
            and plain(token)
            and singular(token.word) not in operation_words(self.operation)  # `payment link`
        )
        if token is None or not (token.kind in STRONG_KINDS or bare):
            return None  # `the acme organization` names an org; `available local` no locality
        value = accept(slot, token, plain=bare)
        return (value, token.index) if value is not None else None

    def prefixed_ids(self) -> None:
        """`cus_4`, `pi_3abc`, `CA123`: an id whose prefix abbreviates what a slot names."""
        for token in self.tokens:
            prefix = id_prefix(token)
            if not prefix or token.index in self.claimed:
                continue
            scored = [
                (abbreviates(prefix, slot, self.operation), slot)
                for slot in self.slots
                if slot not in self.filled and accept(slot, token) is not None
            ]
            # A loose fit (`ca` in `channels`) is enough only for a slot the call needs.
            fits = [
                slot
                for score, slot in sorted(scored, key=lambda pair: -pair[0])
                if score > 1 or (score and (slot.required or slot.location == "path"))
            ]
            # One letter (`U5`, `C1`) says little: only when a single slot starts with it.
            if fits and (len(prefix) > 1 or len(fits) == 1):
                self.take(
                    fits[0],
                    accept(fits[0], token),
                    f"'{token.text}', an id of that kind",
                    token.index,
                )

    def leftovers(self) -> None:
        texts = any(s.name.lower() in TEXT_SLOTS and s not in self.filled for s in self.slots)
        for slot in self.slots:
            if slot in self.filled or not slot.required or slot.location in ("header", "cookie"):
                continue
            if SECRET_WORDS & set(identifier_words(slot.name)):
                continue  # a credential is never guessed from the text
            wording = slot.name.lower() in (*TEXT_SLOTS, *SEARCH_NAMES)
            for token in self.tokens:
                if token.index in self.claimed or token.kind not in STRONG_KINDS:
                    continue
                if (token.kind == "quoted") != wording and (texts or wording):
                    continue  # quoted text is said or named; ids and numbers identify
                if token.kind == "pair" and not PATH_WORDS & set(identifier_words(slot.name)):
                    continue  # `owner/repo` is two values, unless the slot takes a path
                prefix = id_prefix(token)
                if prefix and len(prefix) > 1 and not abbreviates(prefix, slot, self.operation):
                    continue  # `cus_4` is a customer's id, not a subscription's
                if token.kind in ("number", "id") and self.owned_by_other(token, slot):
                    continue  # in `purchase pet 5`, 5 is a pet: no order id, no name
                if token.kind == "number" and slot.kind == "string" and slot.location != "path":
                    continue  # a bare number is an id, not a currency or a title
                value = accept(slot, token)
                if value is not None:
                    self.take(
                        slot, value, f"'{token.text}', the value the request gives", token.index
                    )
                    break
            else:
                if slot.name.lower() in SEARCH_NAMES and slot.item_kind in ("string", ""):
                    words = self.search_words()
                    if words:
                        self.filled[slot] = Filled(words, "the words of the request", "words")

    def owned_by_other(self, token: Mention, slot: Slot) -> bool:
        """Whether the noun just before a value names something the slot does not."""
        for index in range(token.index - 1, max(token.index - 3, -1), -1):
            before = self.tokens[index]
            if before.kind != "word" or before.word in STOP_WORDS or before.word in VERB_METHODS:
                return False
            if before.word in ID_WORDS or before.word in LINKS:
                continue
            nouns = slot_nouns(slot, self.operation.path)
            short = len(before.word) <= 3  # `PR 15` may well be a pull request's number
            return not any(
                matches(before.word, noun, 3) or (short and noun[:1] == before.word[:1])
                for noun in nouns
            )
        return False

    def quoted_text(self) -> None:
        """Quoted text no rule placed names or says something: a name, title or text slot."""
        for token in self.tokens:
            if token.kind != "quoted" or token.index in self.claimed:
                continue
            for word in TEXT_SLOTS:
                slot = next(
                    (s for s in self.slots if s not in self.filled and s.name.lower() == word),
                    None,
                )
                value = accept(slot, token) if slot is not None else None
                if slot is not None and value is not None:
                    self.take(slot, value, f"the quoted text '{token.text}'", token.index)
                    break

    def search_words(self) -> str:
        described = {
            singular(w)
            for text in (self.operation.operation_id, self.operation.path, self.operation.summary)
            for w in identifier_words(text)
        }
        return " ".join(
            t.text
            for t in self.tokens
            if t.index not in self.claimed
            and t.word != self.verb
            and t.word not in STOP_WORDS
            and singular(t.word) not in described
        )
