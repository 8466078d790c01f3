"""Special tokens and the text rules applied before (`text_proc_rules`) and after (`text_postproc_rules`) tokenization.

Each rule is a plain function: pre-rules map a string to a string, post-rules map a list of tokens to a list of
tokens. They are applied in list order, so a user adds or removes a rule by editing a copy of the list.

>>> from tiers.text.rules import text_proc_rules
>>> from functools import reduce
>>> reduce(lambda t, r: r(t), text_proc_rules, "I LOVED it!!!!")
'xxbos i xxup loved it xxrep 4 !'
"""

import html
import operator
import re
import sys
from functools import cache

import numpy as np

from tiers.dispatch import defaults

__all__ = [
    "UNK", "PAD", "BOS", "EOS", "FLD", "TK_REP", "TK_WREP", "TK_UP", "TK_MAJ", "text_spec_tok",
    "fix_html", "replace_rep", "replace_wrep", "spec_add_spaces", "rm_useless_spaces", "replace_all_caps",
    "replace_maj", "lowercase", "replace_space", "text_proc_rules", "text_postproc_rules", "defaults",
]

UNK, PAD, BOS, EOS, FLD = "xxunk", "xxpad", "xxbos", "xxeos", "xxfld"
TK_REP, TK_WREP, TK_UP, TK_MAJ = "xxrep", "xxwrep", "xxup", "xxmaj"
# The order fixes the vocabulary ids: xxunk=0, xxpad=1, xxbos=2... (pad id 1 is assumed by the models).
text_spec_tok = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ]

# Artefacts of scraped HTML (IMDB, WikiText) that html.unescape alone does not fix: entities that lost their
# leading '&', escaped quotes and newlines, and WikiText's @-@ style joiners.
_BROKEN_ENTITIES = {"#39": "'", "#146": "'", "amp": "&", "nbsp": " ", "#36": "$", "quot": "'"}
_re_broken = re.compile(r"(?<!&)(#39|#146|amp|nbsp|#36|quot);")
_HTML_FIXES = [("\\n", "\n"), ('\\"', '"'), (" @.@ ", "."), (" @-@ ", "-"), (" @,@ ", ",")]
_re_br = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)


def fix_html(x: str) -> str:
    """Undo common HTML artefacts in `x`: `<br />` becomes a newline, entities are unescaped, and `...` becomes
    ` …` (fastai's rule: the pretrained WikiText-103 vocabulary and fastai-built ones saw an ellipsis that way).

    >>> fix_html("Great&amp;cheap <br />movie &eacute;... ok")
    'Great&cheap \\nmovie é … ok'
    """
    # Each step is skipped when its trigger character is absent: most texts need none of them.
    if "<" in x:
        x = _re_br.sub("\n", x)
    if ";" in x:
        x = _re_broken.sub(lambda m: _BROKEN_ENTITIES[m.group(1)], x)
    if "\\" in x or "@" in x:
        for old, new in _HTML_FIXES:
            x = x.replace(old, new)
    if "..." in x:
        # as fastai (left to right, so '....' is ' ….'): not 'xxrep 3 .', which models trained with fastai's rules
        # (the WT103 weights, fastai vocabularies and classifiers) never saw
        x = x.replace("...", " …")
    return html.unescape(x) if "&" in x else x


_re_rep = re.compile(r"(\S)(\1{2,})")


def _sub_rep(m: re.Match) -> str:
    c, cc = m.groups()
    return f" {TK_REP} {len(cc) + 1} {c} "


def replace_rep(t: str) -> str:
    """Replace a character repeated three times or more with `xxrep n c` (as fastai does).

    >>> replace_rep("cooool!!!")
    'c xxrep 4 o l xxrep 3 ! '
    """
    if len(t) < 3:
        return t
    # Equivalent to `_re_rep.sub(_sub_rep, t)`, whose matches are exactly the maximal runs of 3+ equal non-space
    # characters; the runs are found with vectorised comparisons instead of a regex attempt at every position.
    a = np.frombuffer(t.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    eq = a[1:] == a[:-1]
    starts = np.flatnonzero(eq[1:] & eq[:-1])  # i where t[i] == t[i+1] == t[i+2]
    if not len(starts):
        return t
    out, last, run_end = [], 0, -1
    for i in starts.tolist():
        if i < run_end:
            continue  # inside a run already replaced
        c = t[i]
        j = i + 3
        while j < len(t) and t[j] == c:
            j += 1
        run_end = j
        if c.isspace():
            continue
        out.append(t[last:i])
        out.append(f" {TK_REP} {j - i} {c} ")
        last = j
    if not out:
        return t
    out.append(t[last:])
    return "".join(out)


# A word followed by at least two more copies of itself, separated by whitespace, ending on a word boundary.
_re_wrep = re.compile(r"(?:\s|^)(\w+)\s+((?:\1\s+)+)\1(?=\W|$)")


def _sub_wrep(m: re.Match) -> str:
    c, cc = m.groups()
    return f" {TK_WREP} {len(cc.split()) + 2} {c} "


def replace_wrep(t: str) -> str:
    """Replace a word repeated three times or more with `xxwrep n w`.

    >>> replace_wrep("it was so so so good")
    'it was xxwrep 3 so  good'
    """
    # A match needs two equal whitespace-separated words in a row: a cheap test that skips most texts.
    w = t.split()
    if not any(map(operator.eq, w, w[1:])):
        return t
    return _re_wrep.sub(_sub_wrep, t)


_re_spec = re.compile(r"([/#\\])")


def spec_add_spaces(t: str) -> str:
    """Add spaces around `/`, `#` and `\\` so the tokenizer splits on them.

    >>> spec_add_spaces("#fastai/tiers")
    ' # fastai / tiers'
    """
    # Three C-level replaces (same result as `_re_spec.sub(r" \1 ", t)`: the replacements cannot interact).
    for c in "/#\\":
        if c in t:
            t = t.replace(c, f" {c} ")
    return t


_re_space = re.compile(" {2,}")


def rm_useless_spaces(t: str) -> str:
    """Collapse runs of spaces into one space.

    >>> rm_useless_spaces("a   b  c")
    'a b c'
    """
    return _re_space.sub(" ", t) if "  " in t else t


@cache
def _case_classes() -> tuple[str, str]:
    """Regex character classes of every Unicode upper- and lower-case letter (built once, on first use).

    fastai matches `[A-Z]` only, so "ÉCOLE" or "Ωmega" escape the case rules; covering all of Unicode fixes that.
    """
    up, low = [], []
    for i in range(sys.maxunicode + 1):
        c = chr(i)
        if c.isupper():
            up.append(c)
        elif c.islower():
            low.append(c)

    def cls(chars: list[str]) -> str:
        # Ranges of consecutive code points keep the pattern short and fast to compile.
        out: list[str] = []
        run: tuple[int, int] | None = None  # the first and last code points of the range being built
        for c in chars:
            o = ord(c)
            if run is not None and o == run[1] + 1:
                run = (run[0], o)
                continue
            if run is not None:
                out.append(_range(*run))
            run = (o, o)
        if run is not None:
            out.append(_range(*run))
        return "".join(out)

    return cls(up), cls(low)


def _range(a: int, b: int) -> str:
    return re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"


# Case rules. Python's regex engine only scans fast for a small leading character class, so ASCII texts (the vast
# majority, and `str.isascii` is free) use `[A-Z]` patterns that check "at the start of a word" in the callback;
# other texts use the full Unicode classes with a look-behind.
_ascii_caps = re.compile(r"[A-Z][^a-z\s]*(?!\S)")
_ascii_maj = re.compile(r"[A-Z][^A-Z\s]*(?!\S)")
_ascii_word = re.compile(r"[A-Z]\S*")
_ascii_full_caps = re.compile(r"[A-Z][^a-z]*")
_ascii_full_maj = re.compile(r"[A-Z][^A-Z]*")


@cache
def _unicode_res() -> tuple[re.Pattern, ...]:
    up, low = _case_classes()
    return (re.compile(rf"(?<!\S)[{up}][^{low}\s]*(?!\S)"), re.compile(rf"(?<!\S)[{up}][^{up}\s]*(?!\S)"),
            re.compile(rf"(?<!\S)[{up}]\S*"), re.compile(rf"[{up}][^{low}]*"), re.compile(rf"[{up}][^{up}]*"))


def _word_start(m: re.Match) -> bool:
    s = m.start()
    return s == 0 or m.string[s - 1].isspace()


def _sub_all_caps(m: re.Match) -> str:
    w = m.group(0)
    if not _word_start(m):
        return w
    return f"{TK_UP} {w.lower()}" if len(w) > 1 else w.lower()


def replace_all_caps(t: str) -> str:
    """Replace a word in ALL CAPS (two letters or more) with `xxup` and the word in lower case.

    >>> replace_all_caps("I AM SHOUTING")
    'i xxup am xxup shouting'
    """
    return (_ascii_caps if t.isascii() else _unicode_res()[0]).sub(_sub_all_caps, t)


def _sub_maj(m: re.Match) -> str:
    w = m.group(0)
    return f"{TK_MAJ} {w.lower()}" if _word_start(m) else w


def replace_maj(t: str) -> str:
    """Replace a Capitalised word with `xxmaj` and the word in lower case.

    >>> replace_maj("Über Paris")
    'xxmaj über xxmaj paris'
    """
    return (_ascii_maj if t.isascii() else _unicode_res()[1]).sub(_sub_maj, t)


def _caps_then_maj(t: str) -> str:
    """`replace_maj(replace_all_caps(t))` in one scan of `t` (the tokenizer uses it when the two rules are adjacent)."""
    if t.isascii():
        word, full_caps, full_maj = _ascii_word, _ascii_full_caps, _ascii_full_maj
    else:
        _, _, word, full_caps, full_maj = _unicode_res()

    def sub(m: re.Match) -> str:
        w = m.group(0)
        if not _word_start(m):
            return w
        if full_caps.fullmatch(w):
            return f"{TK_UP} {w.lower()}" if len(w) > 1 else w.lower()
        if full_maj.fullmatch(w):
            return f"{TK_MAJ} {w.lower()}"
        return w

    return word.sub(sub, t)


# For the default chain `replace_all_caps, replace_maj, lowercase` on ASCII text, lowercasing happens last anyway, so
# the markers can be inserted by template substitution (no Python callback per word): `xxup` before ALL-CAPS words of
# two characters or more, `xxmaj` before capitalised words holding a lower-case letter (a one-letter word such as
# "I" gets no marker in either rule). Property-tested against the three rules applied in turn.
# The "start of a word" look-behind comes after the first letter (`(?<!\S.)`): a pattern that starts with a small
# character class lets the regex engine skip quickly to the next capital.
_ascii_up2 = re.compile(r"[A-Z](?<!\S.)[^a-z\s]+(?!\S)")
_ascii_maj2 = re.compile(r"[A-Z](?<!\S.)[^A-Z\s]*?[a-z][^A-Z\s]*(?!\S)")


def _caps_maj_lower(t: str) -> str:
    """`lowercase(replace_maj(replace_all_caps(t)))` with one template substitution per rule on ASCII text."""
    if not t.isascii():
        return lowercase(_caps_then_maj(t))
    t = _ascii_up2.sub(f"{TK_UP} \\g<0>", t)
    t = _ascii_maj2.sub(f"{TK_MAJ} \\g<0>", t)
    return lowercase(t)


def lowercase(t: str, add_bos: bool = True, add_eos: bool = False) -> str:
    """Lower-case `t`, strip it, and add `xxbos` at the start (and `xxeos` at the end if `add_eos`).

    >>> lowercase("Hello ")
    'xxbos hello'
    """
    return (f"{BOS} " if add_bos else "") + t.lower().strip() + (f" {EOS}" if add_eos else "")


def replace_space(t: list[str]) -> list[str]:
    """Post-rule: replace spaces inside each token with `▁`, so tokens survive being joined with spaces.

    >>> replace_space(["\\n ", "a"])
    ['\\n▁', 'a']
    """
    # One C-level join and search instead of a Python-level check of every token.
    joined = "\0".join(t)
    if " " not in joined:
        return list(t)
    out = joined.replace(" ", "▁").split("\0")
    return out if len(out) == len(t) else [x.replace(" ", "▁") for x in t]


text_proc_rules = [fix_html, replace_rep, replace_wrep, spec_add_spaces, rm_useless_spaces,
                   replace_all_caps, replace_maj, lowercase]
text_postproc_rules = [replace_space]




# fastai's `defaults` for text live on the one library-wide `defaults` (tiers.dispatch): tokenizers read the
# rules from there when none are given, at call time, so `defaults.text_proc_rules = [...]` changes the default
# for everything created afterwards. Only missing settings are filled in (a user's earlier choice stays).
for _name, _value in (("text_spec_tok", text_spec_tok), ("text_proc_rules", text_proc_rules),
                      ("text_postproc_rules", text_postproc_rules)):
    if not hasattr(defaults, _name):
        setattr(defaults, _name, _value)
