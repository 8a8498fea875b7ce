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


def _split(pieces: list[str], thinking: bool = True) -> list[tuple[str, str]]:
    from engines.text import ReasoningSplitter

    splitter = ReasoningSplitter(thinking)
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    merged: list[tuple[str, str]] = []
    for kind, text in out:
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


def test_reasoning_then_answer_with_the_tag_split_across_frames() -> None:
    assert _split(["Let me see", ". 2+2 is 4.</th", "in", "k>\n\nIt is ", "4."]) == [
        ("reasoning", "Let me see. 2+2 is 4."),
        ("content", "It is 4."),
    ]


def test_a_stream_without_the_tag_is_all_reasoning() -> None:
    assert _split(["still thinking <", "/thin"]) == [("reasoning", "still thinking </thin")]


def test_the_tag_at_the_very_end() -> None:
    assert _split(["done thinking", "</think>"]) == [("reasoning", "done thinking")]


def test_a_partial_lookalike_is_released() -> None:
    assert _split(["a </thimble> b</think>c"]) == [
        ("reasoning", "a </thimble> b"),
        ("content", "c"),
    ]


def test_thinking_off_is_all_answer() -> None:
    assert _split(["\n\nHello", " there"], thinking=False) == [("content", "Hello there")]


def test_loop_detector_catches_a_repeated_span_and_not_varied_text() -> None:
    from engines.text import LoopDetector

    looping = LoopDetector()
    hits = [looping.feed("Wait, let me re-check the sum. ") for _ in range(30)]
    assert any(hits) and hits.index(True) < 12
    varied = LoopDetector()
    assert not any(varied.feed(f"step {i}: add {i * 7} to the total. ") for i in range(300))
