from engines.text import IncrementalDetokenizer, StopStringFilter


def test_it_emits_multibyte_characters_only_when_complete() -> None:
    # A toy byte-level vocabulary: each id is one byte of UTF-8.
    data = "héllo ✓".encode()

    def decode(ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    detok = IncrementalDetokenizer(decode)
    pieces = [detok.push(b) for b in data]
    assert "".join(pieces) == "héllo ✓"
    assert all("\ufffd" not in p for p in pieces)


def test_it_cuts_at_a_stop_string_split_across_pieces() -> None:
    stops = StopStringFilter(["</end>"])
    out = [stops.feed(p) for p in ["Hello </", "en", "d> never shown"]]
    assert "".join(out) == "Hello "
    assert stops.stopped


def test_it_releases_held_text_that_turned_out_not_to_be_a_stop() -> None:
    stops = StopStringFilter(["STOP"])
    assert stops.feed("ab ST") == "ab "
    assert stops.feed("AR") == "STAR"
    assert stops.feed("ST") == ""
    assert stops.flush() == "ST"
    assert not stops.stopped


def test_it_passes_everything_through_without_stops() -> None:
    stops = StopStringFilter([])
    assert stops.feed("anything") == "anything"
