"""X/Twitter weighted tweet length, computed the way twitter-text's ``parseTweet`` does."""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import regex

from posts import twemoji_regex

__all__ = [
    "CONFIG_V3",
    "TwitterTextConfig",
    "is_known_tld",
    "url_spans",
    "weighted_length",
]

# Behaviour follows twitter/twitter-text (Apache-2.0) at commit 30e2430d90: js/src/parseTweet.js,
# js/src/extractUrlsWithIndices.js and js/src/regexp/*.js. The code below is a fresh Python
# implementation; only the configuration values, the TLD lists and the emoji pattern
# (posts/twemoji_regex.py, from twemoji-parser, which twitter-text counts emoji with) are data taken
# from upstream.


@dataclass(frozen=True)
class TwitterTextConfig:
    """Weighting rules of one twitter-text configuration (``config/v*.json``).

    Weights are in units of ``1/scale``: with scale 100, weight 200 means a code point counts as 2.
    ``ranges`` holds inclusive ``(start, end, weight)`` code point ranges; the first match wins and
    anything outside every range weighs ``default_weight``.
    """

    version: int
    max_weighted_tweet_length: int
    scale: int
    default_weight: int
    transformed_url_length: int
    ranges: tuple[tuple[int, int, int], ...] = ()
    emoji_parsing_enabled: bool = False

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError("scale must be at least 1")
        if self.max_weighted_tweet_length < 1:
            raise ValueError("max_weighted_tweet_length must be positive")
        weights = [self.default_weight, *(weight for _, _, weight in self.ranges)]
        # twitter-text reports weightedLength / scale; keeping every weight a multiple of the scale
        # keeps that an integer (true of every published config).
        if any(weight < 0 or weight % self.scale for weight in weights):
            raise ValueError("weights must be non-negative multiples of scale")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TwitterTextConfig:
        """Build a config from the parsed JSON of a twitter-text ``config/v*.json`` file.

        Args:
            data: The decoded JSON object (camelCase keys as upstream).

        Returns:
            The equivalent config.
        """
        return cls(
            version=int(data["version"]),
            max_weighted_tweet_length=int(data["maxWeightedTweetLength"]),
            scale=int(data["scale"]),
            default_weight=int(data["defaultWeight"]),
            transformed_url_length=int(data.get("transformedURLLength", 23)),
            ranges=tuple(
                (int(item["start"]), int(item["end"]), int(item["weight"])) for item in data.get("ranges", ())
            ),
            emoji_parsing_enabled=bool(data.get("emojiParsingEnabled", False)),
        )

    def weight_of(self, code_point: int) -> int:
        """Return the scaled weight of one code point.

        Args:
            code_point: The code point to weigh.

        Returns:
            The weight in units of ``1/scale``.
        """
        for start, end, weight in self.ranges:
            if start <= code_point <= end:
                return weight
        return self.default_weight


_LATIN_AND_BASIC_PUNCTUATION_RANGES: tuple[tuple[int, int, int], ...] = (
    (0, 4351, 100),
    (8192, 8205, 100),
    (8208, 8223, 100),
    (8242, 8247, 100),
)

#: Current config (``config/v3.json``): like v2, and every emoji sequence counts 2.
CONFIG_V3 = TwitterTextConfig(
    version=3,
    max_weighted_tweet_length=280,
    scale=100,
    default_weight=200,
    transformed_url_length=23,
    ranges=_LATIN_AND_BASIC_PUNCTUATION_RANGES,
    emoji_parsing_enabled=True,
)


# --- Top-level domains -------------------------------------------------------------------------
# The complete gTLD and ccTLD lists of twitter-text's js/src/regexp/validGTLD.js and validCCTLD.js
# as of upstream commit 65e7e00da3 (the commit that also last touched the conformance files).
# As upstream, a host under any other TLD is not a URL, with or without a scheme.

_GENERIC_TLDS = """
aaa aarp abarth abb abbott abbvie abc able abogado abudhabi academy accenture accountant
accountants aco active actor adac ads adult aeg aero aetna afamilycompany afl africa agakhan
agency aig aigo airbus airforce airtel akdn alfaromeo alibaba alipay allfinanz allstate ally
alsace alstom americanexpress americanfamily amex amfam amica amsterdam analytics android anquan
anz aol apartments app apple aquarelle arab aramco archi army arpa art arte asda asia associates
athleta attorney auction audi audible audio auspost author auto autos avianca aws axa azure baby
baidu banamex bananarepublic band bank bar barcelona barclaycard barclays barefoot bargains
baseball basketball bauhaus bayern bbc bbt bbva bcg bcn beats beauty beer bentley berlin best
bestbuy bet bharti bible bid bike bing bingo bio biz black blackfriday blanco blockbuster blog
bloomberg blue bms bmw bnl bnpparibas boats boehringer bofa bom bond boo book booking boots
bosch bostik boston bot boutique box bradesco bridgestone broadway broker brother brussels
budapest bugatti build builders business buy buzz bzh cab cafe cal call calvinklein cam camera
camp cancerresearch canon capetown capital capitalone car caravan cards care career careers cars
cartier casa case caseih cash casino cat catering catholic cba cbn cbre cbs ceb center ceo cern
cfa cfd chanel channel charity chase chat cheap chintai chloe christmas chrome chrysler church
cipriani circle cisco citadel citi citic city cityeats claims cleaning click clinic clinique
clothing cloud club clubmed coach codes coffee college cologne com comcast commbank community
company compare computer comsec condos construction consulting contact contractors cooking
cookingchannel cool coop corsica country coupon coupons courses cpa credit creditcard
creditunion cricket crown crs cruise cruises csc cuisinella cymru cyou dabur dad dance data date
dating datsun day dclk dds deal dealer deals degree delivery dell deloitte delta democrat dental
dentist desi design dev dhl diamonds diet digital direct directory discount discover dish diy
dnp docs doctor dodge dog doha domains doosan dot download drive dtv dubai duck dunlop duns
dupont durban dvag dvr earth eat eco edeka edu education email emerck energy engineer
engineering enterprises epost epson equipment ericsson erni esq estate esurance etisalat
eurovision eus events everbank exchange expert exposed express extraspace fage fail fairwinds
faith family fan fans farm farmers fashion fast fedex feedback ferrari ferrero fiat fidelity
fido film final finance financial fire firestone firmdale fish fishing fit fitness flickr
flights flir florist flowers flsmidth fly foo food foodnetwork football ford forex forsale forum
foundation fox free fresenius frl frogans frontdoor frontier ftr fujitsu fujixerox fun fund
furniture futbol fyi gal gallery gallo gallup game games gap garden gay gbiz gdn gea gent
genting george ggee gift gifts gives giving glade glass gle global globo gmail gmbh gmo gmx
godaddy gold goldpoint golf goo goodhands goodyear goog google gop got gov grainger graphics
gratis green gripe grocery group guardian gucci guge guide guitars guru hair hamburg hangout
haus hbo hdfc hdfcbank health healthcare help helsinki here hermes hgtv hiphop hisamitsu hitachi
hiv hkt hockey holdings holiday homedepot homegoods homes homesense honda honeywell horse
hospital host hosting hot hoteles hotels hotmail house how hsbc htc hughes hyatt hyundai ibm
icbc ice icu ieee ifm iinet ikano imamat imdb immo immobilien inc industries infiniti info ing
ink institute insurance insure int intel international intuit investments ipiranga irish iselect
ismaili ist istanbul itau itv iveco iwc jaguar java jcb jcp jeep jetzt jewelry jio jlc jll jmp
jnj jobs joburg jot joy jpmorgan jprs juegos juniper kaufen kddi kerryhotels kerrylogistics
kerryproperties kfh kia kim kinder kindle kitchen kiwi koeln komatsu kosher kpmg kpn krd kred
kuokgroup kyoto lacaixa ladbrokes lamborghini lamer lancaster lancia lancome land landrover
lanxess lasalle lat latino latrobe law lawyer lds lease leclerc lefrak legal lego lexus lgbt
liaison lidl life lifeinsurance lifestyle lighting like lilly limited limo lincoln linde link
lipsy live living lixil llc llp loan loans locker locus loft lol london lotte lotto love lpl
lplfinancial ltd ltda lundbeck lupin luxe luxury macys madrid maif maison makeup man management
mango map market marketing markets marriott marshalls maserati mattel mba mcd mcdonalds mckinsey
med media meet melbourne meme memorial men menu meo merckmsd metlife miami microsoft mil mini
mint mit mitsubishi mlb mls mma mobi mobile mobily moda moe moi mom monash money monster
montblanc mopar mormon mortgage moscow moto motorcycles mov movie movistar msd mtn mtpc mtr
museum mutual mutuelle nab nadex nagoya name nationwide natura navy nba nec net netbank netflix
network neustar new newholland news next nextdirect nexus nfl ngo nhk nico nike nikon ninja
nissan nissay nokia northwesternmutual norton now nowruz nowtv nra nrw ntt nyc obi observer off
office okinawa olayan olayangroup oldnavy ollo omega one ong onion onl online onyourside ooo
open oracle orange org organic orientexpress origins osaka otsuka ott ovh page pamperedchef
panasonic panerai paris pars partners parts party passagens pay pccw pet pfizer pharmacy phd
philips phone photo photography photos physio piaget pics pictet pictures pid pin ping pink
pioneer pizza place play playstation plumbing plus pnc pohl poker politie porn post pramerica
praxi press prime pro prod productions prof progressive promo properties property protection pru
prudential pub pwc qpon quebec quest qvc racing radio raid read realestate realtor realty
recipes red redstone redumbrella rehab reise reisen reit reliance ren rent rentals repair report
republican rest restaurant review reviews rexroth rich richardli ricoh rightathome ril rio rip
rmit rocher rocks rodeo rogers room rsvp rugby ruhr run rwe ryukyu saarland safe safety sakura
sale salon samsclub samsung sandvik sandvikcoromant sanofi sap sapo sarl sas save saxo sbi sbs
sca scb schaeffler schmidt scholarships school schule schwarz science scjohnson scor scot search
seat secure security seek select sener services ses seven sew sex sexy sfr shangrila sharp shaw
shell shia shiksha shoes shop shopping shouji show showtime shriram silk sina singles site ski
skin sky skype sling smart smile sncf soccer social softbank software sohu solar solutions song
sony soy space spiegel sport spot spreadbetting srl srt stada staples star starhub statebank
statefarm statoil stc stcgroup stockholm storage store stream studio study style sucks supplies
supply support surf surgery suzuki swatch swiftcover swiss sydney symantec systems tab taipei
talk taobao target tatamotors tatar tattoo tax taxi tci tdk team tech technology tel telecity
telefonica temasek tennis teva thd theater theatre tiaa tickets tienda tiffany tips tires tirol
tjmaxx tjx tkmaxx tmall today tokyo tools top toray toshiba total tours town toyota toys trade
trading training travel travelchannel travelers travelersinsurance trust trv tube tui tunes
tushu tvs ubank ubs uconnect unicom university uno uol ups vacations vana vanguard vegas
ventures verisign versicherung vet viajes video vig viking villas vin vip virgin visa vision
vista vistaprint viva vivo vlaanderen vodka volkswagen volvo vote voting voto voyage vuelos
wales walmart walter wang wanggou warman watch watches weather weatherchannel webcam weber
website wed wedding weibo weir whoswho wien wiki williamhill win windows wine winners wme
wolterskluwer woodside work works world wow wtc wtf xbox xerox xfinity xihuan xin xperia xxx xyz
yachts yahoo yamaxun yandex yodobashi yoga yokohama you youtube yun zappos zara zero zip zippo
zone zuerich vermögensberater vermögensberatung дети католик ком москва онлайн орг рус сайт קום
ابوظبي اتصالات ارامكو العليان بازار بيتك شبكة عرب كاثوليك كوم موبايلي موقع همراه कॉम नेट संगठन
คอม みんな クラウド グーグル コム ストア セール ファッション ポイント 世界 中信 中文网 企业 佛山 信息 健康 八卦 公司 公益 商城 商店 商标 嘉里 嘉里大酒店 在线
大众汽车 大拿 天主教 娱乐 家電 工行 广东 微博 慈善 我爱你 手机 手表 招聘 政务 政府 新闻 时尚 書籍 机构 淡马锡 游戏 点看 珠宝 移动 组织机构 网址 网店 网站 网络 联通
诺基亚 谷歌 购物 通販 集团 電訊盈科 飞利浦 食品 餐厅 香格里拉 닷넷 닷컴 삼성
"""

_COUNTRY_TLDS = """
ac ad ae af ag ai al am an ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo bq
br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz
ec ee eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw
gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz
la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx
my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro
rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk
tl tm tn to tp tr tt tv tw tz ua ug uk um us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw ελ
ευ бг бел ею мкд мон рф срб укр қаз հայ الاردن البحرين الجزائر السعودية المغرب امارات ایران بارت
بھارت تونس سودان سورية عراق عمان فلسطين قطر مصر مليسيا موريتانيا پاکستان ڀارت भारत भारतम् भारोत
বাংলা ভারত ভাৰত ਭਾਰਤ ભારત ଭାରତ இந்தியா இலங்கை சிங்கப்பூர் భారత్ ಭಾರತ ഭാരതം ලංකා ไทย ລາວ გე 中国 中國
台湾 台灣 新加坡 澳門 香港 한국
"""

_TLDS: frozenset[str] = frozenset(_GENERIC_TLDS.split()) | frozenset(_COUNTRY_TLDS.split())


def is_known_tld(label: str) -> bool:
    """Whether twitter-text links hosts under the top-level domain ``label`` (``com``, ``xn--p1ai``)."""
    label = label.lower()
    return label in _TLDS or label.startswith("xn--")

# --- URL grammar (twitter-text's extractUrl regexp) -------------------------------------------

_INVALID_CHARS = "\ufffe\ufeff\uffff"
_DIRECTIONAL_MARKS = "\u202a-\u202e\u061c\u200e\u200f\u2066-\u2069"
# Characters that may not appear in a domain label: ASCII punctuation (but not '"' or '`'),
# whitespace and the invalid characters.
_DOMAIN_STOP = (
    r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"
    "\t-\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000" + _INVALID_CHARS
)
_LATIN_ACCENTS = (
    "\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263"
    "\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = "\u0400-\u04ff"


def _trie_pattern(words: frozenset[str]) -> str:
    """Regex matching any of ``words``, longest first, in time linear in the word length.

    Upstream lists TLDs so that a longer one ("嘉里大酒店") is tried before its prefix ("嘉里");
    the greedy optional groups of a trie keep that preference and backtrack to the prefix.
    """
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        branches = [regex.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


_TLD = rf"(?i:{_trie_pattern(_TLDS)}(?=[^0-9a-zA-Z@+\-]|\Z))"
_PUNYCODE_TLD = r"(?i:xn--[\-0-9a-z]+)"

_DOMAIN_CHAR = f"[^{_DOMAIN_STOP}]"

_PATH_CHAR = rf"[A-Za-z{_CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN_ACCENTS}]"
# Up to two levels of balanced parentheses, as in Wikipedia links such as /wiki/Primer_(film).
_BALANCED_PARENS = rf"(?:\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*))\))"
# A path may not end in punctuation such as . , ! ? : ; ' or a stray closing bracket.
_PATH_END = rf"[+\-A-Za-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]"
# As upstream's pattern reads once assembled (validUrlPathEndingChars is spliced into validUrlPath
# ungrouped): a segment is characters ending in an ending character, OR balanced parentheses alone,
# OR "@name/". So "/[x](y)" links only "/[x", exactly as twitter-text does.
_PATH_SEGMENT = (rf"(?:(?:{_PATH_CHAR}*(?:{_BALANCED_PARENS}{_PATH_CHAR}*)*{_PATH_END}|{_BALANCED_PARENS})"
                 rf"|(?:@{_PATH_CHAR}+/))")
_QUERY_CHAR = r"[A-Za-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_QUERY_END = r"[A-Za-z0-9\-_&=#/]"

_ASCII_DOMAIN = regex.compile(rf"(?:[\-A-Za-z0-9{_LATIN_ACCENTS}]+\.)+(?:{_TLD}|{_PUNYCODE_TLD})")
_INVALID_CHAR_BEFORE_BARE_DOMAIN = regex.compile(r"[\-_./]\Z")
# t.co links keep only their slug and query string.
_TCO_URL = regex.compile(rf"https?://t\.co/([a-z0-9]+)(?:\?{_QUERY_CHAR}*{_QUERY_END})?", regex.IGNORECASE)
_LABEL_SEPARATORS = regex.compile("[\u3002\uff0e\uff61]")

_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG_LENGTH = 40
_MAX_DOMAIN_LABEL_LENGTH = 63
_DEFAULT_PROTOCOL = "https://"

# --- Emoji (twitter-text counts the matches of twemoji-parser's pattern) -----------------------

# Compiled with ``re`` (not ``regex``): the pattern is made of UTF-16 code units, which ``re`` matches
# as lone surrogate code points in the UTF-16 view of the text built by ``_utf16_units``.
_TWEMOJI = re.compile(twemoji_regex.PATTERN)


def _utf16_units(text: str) -> str:
    """``text`` with every astral code point split into its two surrogate code units (as in JS)."""
    return "".join(map(chr, array("H", text.encode("utf-16-le"))))


def _emoji_spans(text: str) -> list[tuple[int, int]]:
    """Every emoji twitter-text counts (twemoji-parser's matches), as code point index spans."""
    if text.isascii():  # every alternative of the pattern needs a non-ASCII code unit
        return []
    units = _utf16_units(text)
    if len(units) == len(text):
        return [match.span() for match in _TWEMOJI.finditer(units)]
    # Code unit index -> code point index: minus the high surrogates before it.
    highs = [i for i, char in enumerate(units) if "\ud800" <= char <= "\udbff"]
    return [
        (start - bisect.bisect_left(highs, start), end - bisect.bisect_left(highs, end))
        for start, end in (match.span() for match in _TWEMOJI.finditer(units))
    ]


class _UrlEntity(NamedTuple):
    start: int
    end: int
    # How far parseTweet skips: upstream uses the length of the entity's url string, which for a
    # bare domain with a path is not always end - start.
    length: int


def _utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _punycode_length(label: str) -> int:
    """Length of punycode.js ``toASCII(label)``; -1 if it cannot be encoded."""
    parts = _LABEL_SEPARATORS.split(label)
    total = len(parts) - 1
    for part in parts:
        if (not part.isascii() or "\x7f" in part) and any(ord(char) > 0x7E for char in part):
            try:
                total += 4 + len(part.encode("punycode"))
            except (UnicodeError, OverflowError):
                return -1
        else:
            total += len(part)
    return total


def _is_valid_url(url: str, protocol: str, domain: str) -> bool:
    if domain.startswith("xn--") and not _ASCII_DOMAIN.search(domain):
        return False
    for label in domain.split("."):
        if not 1 <= _punycode_length(label) <= _MAX_DOMAIN_LABEL_LENGTH:
            return False
    return len(protocol) + _utf16_length(url) <= _MAX_URL_LENGTH


# Every URL the extractor can find has a dot followed by a letter (of any script) in its domain;
# text without one is skipped before the (slow) full pattern runs.
_MAYBE_URL = regex.compile(r"\.[^\W\d_]")


_TOKEN = regex.compile(r"\S+")

# twitter-text's extractor pattern (``EXTRACT_URL`` in tests/twitter_text_support.py, which
# tests/test_twitter_text.py checks this scan against) backtracks: run by a regex engine from every
# position of ``a.a.a.a...`` it takes time quadratic in the length. The scan below finds the same matches in
# linear time (plus a binary search per position): a domain is a chain of dot-separated labels, so
# which labels can end a domain starting anywhere is worked out once per text, right to left.
class _CharClass(dict[str, bool]):
    """Whether a character matches a one-character pattern, remembered per character (a text's
    characters repeat, so a look-up replaces most pattern runs); at most :data:`_CHAR_CACHE` kept."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = regex.compile(pattern)

    def __missing__(self, char: str) -> bool:
        found = self.pattern.match(char) is not None
        if len(self) < _CHAR_CACHE:
            self[char] = found
        return found


_CHAR_CACHE = 1 << 16
_DOMAIN_CHAR_RE = _CharClass(_DOMAIN_CHAR)
_ASCII_LABEL_CHAR = _CharClass(rf"[\-A-Za-z0-9{_LATIN_ACCENTS}]")
_TLD_AT = regex.compile(rf"(?:{_TLD}|{_PUNYCODE_TLD})")
_BEFORE_CHAR = regex.compile(rf"[^A-Za-z0-9@\uff20$#\uff03{_INVALID_CHARS}]|[{_DIRECTIONAL_MARKS}]")
_PROTOCOL = regex.compile(r"(?i:https?://)")
_URL_TAIL = regex.compile(
    r"(?::[0-9]+)?"
    rf"(?P<path>/{_PATH_SEGMENT}*)?"
    rf"(?:\?{_QUERY_CHAR}*{_QUERY_END})?"
)


class _Domains:
    """Where the domain (``label.label.tld``) that the pattern would match from a position ends, for
    every position of one text, in the pattern's own order of preference (the most labels first).

    Two label grammars: twitter-text's domain (``bare=False``: domain characters, with ``-`` inside
    every label and ``_`` inside all but the last) and its ASCII domain (``bare=True``: ``-``,
    letters and digits anywhere). A label ends at a dot; the top-level domain follows the last one.
    """

    def __init__(self, text: str, *, bare: bool) -> None:
        self.text = text
        n = len(text)
        if bare:
            edge = [_ASCII_LABEL_CHAR[c] for c in text]
            inner_sub = inner_last = edge
        else:
            edge = [_DOMAIN_CHAR_RE[c] for c in text]
            inner_sub = [e or c in "-_" for e, c in zip(edge, text, strict=True)]
            inner_last = [e or c == "-" for e, c in zip(edge, text, strict=True)]
        self.edge = edge
        # next_bad_*[i]: the first index >= i whose character may not be inside such a label.
        self.next_bad_sub = self._next_bad(inner_sub, n)
        self.next_bad_last = self.next_bad_sub if inner_last is inner_sub else self._next_bad(inner_last, n)
        self.dots = [i for i, char in enumerate(text) if char == "."]
        count = len(self.dots)
        # tld[i]: where a top-level domain right after dot i ends (None: none there); last[i]: the
        # furthest label j >= i that can end a domain (a valid last label, a top-level domain after
        # its dot) reachable from label i through valid labels only.
        self.tld: list[int | None] = []
        for dot in self.dots:
            found = _TLD_AT.match(text, dot + 1)
            self.tld.append(found.end() if found else None)
        self.last: list[int | None] = [None] * (count + 1)
        for i in range(count - 1, -1, -1):
            start = self.dots[i - 1] + 1 if i else 0
            if not self._label(start, self.dots[i], self.next_bad_sub):
                continue
            ends_here = self.tld[i] is not None and self._label(start, self.dots[i], self.next_bad_last)
            self.last[i] = self.last[i + 1] if self.last[i + 1] is not None else (i if ends_here else None)

    @staticmethod
    def _next_bad(inner: list[bool], n: int) -> list[int]:
        result = [n] * (n + 1)
        for i in range(n - 1, -1, -1):
            result[i] = result[i + 1] if inner[i] else i
        return result

    def _label(self, start: int, end: int, next_bad: list[int]) -> bool:
        return start < end and self.edge[start] and self.edge[end - 1] and next_bad[start] >= end

    def end(self, position: int) -> int | None:
        """End of the domain starting at ``position``, or None when none starts there."""
        label = bisect.bisect_left(self.dots, position)
        if label == len(self.dots) or not self._label(position, self.dots[label], self.next_bad_sub):
            return None
        further = self.last[label + 1]
        if further is not None:
            return self.tld[further]
        if self.tld[label] is not None and self._label(position, self.dots[label], self.next_bad_last):
            return self.tld[label]
        return None


def _find_urls(text: str) -> Iterator[tuple[str, int, int, str, str, str | None]]:
    """What twitter-text's extractor pattern finds in ``text``: (before, start, end, protocol, domain, path)."""
    domains = _Domains(text, bare=False)
    position = 0
    while position < len(text):
        found = None
        # The pattern's alternatives for the character before the URL, in its order.
        starts = [position + 1] if _BEFORE_CHAR.match(text, position) else []
        if position == 0:
            starts.append(0)
        for start in starts:
            protocol = _PROTOCOL.match(text, start)
            domain_end = domains.end(protocol.end()) if protocol else None
            if domain_end is not None:
                found = (start, protocol.end(), domain_end)  # type: ignore[union-attr]
                break
            domain_end = domains.end(start)
            if domain_end is not None:
                found = (start, start, domain_end)
                break
        if found is None:
            position += 1
            continue
        start, domain_start, domain_end = found
        tail = _URL_TAIL.match(text, domain_end)
        assert tail is not None  # every part of the tail is optional
        yield (text[position:start], start, tail.end(), text[start:domain_start], text[domain_start:domain_end],
               tail.group("path"))
        position = tail.end()


def _ascii_domains(domain: str) -> Iterator[tuple[int, int]]:
    """What ``_ASCII_DOMAIN.finditer(domain)`` finds, as spans."""
    domains = _Domains(domain, bare=True)
    position = 0
    while position < len(domain):
        end = domains.end(position)
        if end is None:
            position += 1
            continue
        yield position, end
        position = end


def _extract_urls(text: str) -> list[_UrlEntity]:
    """URL entities, as twitter-text's extractor finds them, in time linear in the text's length.

    URLs never contain white space, so each whitespace-free token is scanned on its own (with the
    one character before it, which the pattern looks at).
    """
    if not _MAYBE_URL.search(text):
        return []
    entities: list[_UrlEntity] = []
    for token in _TOKEN.finditer(text):
        offset = max(0, token.start() - 1)
        chunk = text[offset:token.end()]
        if _MAYBE_URL.search(chunk):
            entities.extend(_UrlEntity(e.start + offset, e.end + offset, e.length) for e in _scan_chunk(chunk))
    return entities


def _scan_chunk(text: str) -> list[_UrlEntity]:
    entities: list[_UrlEntity] = []
    for before, start, end, protocol, domain, path in _find_urls(text):
        url = text[start:end]
        if not _is_valid_url(url, protocol or _DEFAULT_PROTOCOL, domain):
            continue
        if protocol:
            tco = _TCO_URL.match(url)
            if tco:
                if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                    continue
                end = start + tco.end()
            entities.append(_UrlEntity(start, end, end - start))
            continue
        # Without a scheme only ASCII(-ish) domain names count, each one separately.
        if _INVALID_CHAR_BEFORE_BARE_DOMAIN.search(before):
            continue
        found = [_UrlEntity(start + s, start + e, e - s) for s, e in _ascii_domains(domain)]
        if found and path:
            last = found[-1]
            found[-1] = _UrlEntity(last.start, end, len(url) - len(domain) + last.length)
        entities.extend(found)
    return entities


def scheme_url_spans(text: str) -> list[tuple[int, int]]:
    """The ``http(s)://`` URLs twitter-text's extractor finds in ``text``, bare domains left out.

    This is the extractor Mastodon runs with ``extract_url_without_protocol: false`` (its status
    length rule): the same scan as :func:`url_spans`, so a scheme-less match still takes its place in
    the text, but only the matches that begin with a scheme are kept, t.co links are not trimmed, and
    a URL longer than the extractor's maximum (4,096) is not a URL.
    """
    if "://" not in text or not _MAYBE_URL.search(text):
        return []
    spans: list[tuple[int, int]] = []
    for token in _TOKEN.finditer(text):
        if "://" not in token.group():
            continue
        offset = max(0, token.start() - 1)
        chunk = text[offset:token.end()]
        for _before, start, end, protocol, domain, _path in _find_urls(chunk):
            # The URL itself (scheme included) must stay within the maximum: Ruby's check, which,
            # unlike twitter-text's JavaScript, does not add the scheme's length a second time.
            if protocol and _is_valid_url(chunk[start:end], "", domain):
                spans.append((start + offset, end + offset))
    return spans


def url_spans(text: str) -> list[tuple[int, int]]:
    """Find every URL twitter-text's extractor recognises, as X would shorten it.

    Covers ``http(s)://`` URLs (paths, queries, fragments, balanced parentheses; trailing
    punctuation left out) and bare domains under a known TLD such as ``example.com/path``. The
    text is searched as given (:func:`weighted_length` NFC-normalises first).

    Args:
        text: Text to scan.

    Returns:
        Sorted, non-overlapping ``(start, end)`` half-open ``str`` index spans.
    """
    return [(entity.start, entity.end) for entity in _extract_urls(text)]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _join_surrogate_pairs(text: str) -> str:
    if not text.isascii() and _SURROGATE.search(text):
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return text


def weighted_length(text: str, config: TwitterTextConfig = CONFIG_V3) -> int:
    """Return X's weighted length of ``text`` (280 is the limit under v2/v3).

    The ``weightedLength`` of twitter-text's ``parseTweet(text, config)``, without the range
    bookkeeping: renderers call this many times per post while fitting.

    Args:
        text: The post text.
        config: Weighting rules; defaults to the current v3 config.

    Returns:
        The weighted length, e.g. 1 per Latin letter, 2 per CJK character, 23 per URL.
    """
    normalized = unicodedata.normalize("NFC", _join_surrogate_pairs(text))
    total, pos = 0, 0
    for entity in _extract_urls(normalized):
        total += _plain_weight(normalized[pos:entity.start], config)
        total += config.transformed_url_length * config.scale
        pos = min(entity.start + entity.length, len(normalized))
    total += _plain_weight(normalized[pos:], config)
    return total // config.scale


def _plain_weight(text: str, config: TwitterTextConfig) -> int:
    """Scaled weight of URL-free text: emoji sequences at the default weight, the rest by range."""
    if not text:
        return 0
    total = 0
    if config.emoji_parsing_enabled and not text.isascii():
        pieces = []
        pos = 0
        for start, end in _emoji_spans(text):
            pieces.append(text[pos:start])
            total += config.default_weight
            pos = end
        pieces.append(text[pos:])
        text = "".join(pieces)
    if text.isascii() and _ascii_weight(config) is not None:
        return total + len(text) * _ascii_weight(config)  # type: ignore[operator]
    light = _light_pattern(config)
    if light is not None:
        pattern, weight = light
        heavy = len(pattern.sub("", text))
        return total + (len(text) - heavy) * weight + heavy * config.default_weight
    return total + sum(config.weight_of(ord(char)) for char in text)


@functools.lru_cache(maxsize=8)
def _light_pattern(config: TwitterTextConfig) -> tuple[regex.Pattern[str], int] | None:
    """A pattern of every code point in ``config``'s ranges, when they all share one weight."""
    weights = {weight for _, _, weight in config.ranges}
    if len(weights) != 1:
        return None
    ranges = "".join(f"\\U{start:08x}-\\U{end:08x}" for start, end, _ in config.ranges)
    return regex.compile(f"[{ranges}]"), weights.pop()


def _ascii_weight(config: TwitterTextConfig) -> int | None:
    """The weight every ASCII code point has under ``config``, if they all share one."""
    weights = {config.weight_of(cp) for cp in (0, 0x7F)}
    if len(weights) == 1 and all(start <= 0 and end >= 0x7F for start, end, _ in config.ranges[:1]):
        return weights.pop()
    return None
