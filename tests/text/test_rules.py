"""The text rules: each a plain function, checked on tricky input and against its unoptimised definition."""

import re
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.text import rules
from tiers.text.rules import (
    BOS,
    EOS,
    PAD,
    TK_MAJ,
    TK_REP,
    TK_UP,
    TK_WREP,
    UNK,
    defaults,
    fix_html,
    lowercase,
    replace_all_caps,
    replace_maj,
    replace_rep,
    replace_space,
    replace_wrep,
    rm_useless_spaces,
    spec_add_spaces,
    text_proc_rules,
    text_spec_tok,
)


def apply_all(t, rs=None):
    return reduce(lambda x, r: r(x), text_proc_rules if rs is None else rs, t)


def test_special_tokens_order_gives_fastai_ids():
    assert text_spec_tok[:4] == [UNK, PAD, BOS, EOS]
    assert text_spec_tok.index("xxpad") == 1 and text_spec_tok.index("xxunk") == 0
    assert defaults.text_proc_rules is text_proc_rules and defaults.text_spec_tok is text_spec_tok
    assert defaults.cpus >= 1


def test_full_rule_chain_matches_fastai_reference():
    s = "This is a TEST!!!! of <br /> the the the the Fastai   library."
    assert apply_all(s) == "xxbos xxmaj this is a xxup test xxrep 4 ! of \n xxwrep 4 the xxmaj fastai library."


def test_fix_html():
    assert fix_html("#39;bli#146;") == "'bli'"
    assert fix_html("Sarah amp; Duck") == "Sarah & Duck"
    assert fix_html("a nbsp; #36;") == "a   $"
    assert fix_html('\\" <unk>') == '" <unk>'
    assert fix_html("quot;  @.@  @-@ ") == "' .-"
    assert fix_html("x<br />y<BR>z<br/>") == "x\ny\nz\n"
    assert fix_html("caf&eacute; &lt;3 &#128512;") == "café <3 😀"
    assert fix_html("") == ""
    assert fix_html("plain text") == "plain text"


def test_ellipsis_as_fastai():
    # AUDIT C7: fastai's fix_html turns '...' into ' …' (before replace_rep), so vocabularies and weights built with
    # fastai's rules (WT103) hold '…' where tiers made 'xxrep 3 .'
    assert fix_html("Wait... what") == "Wait … what"
    assert fix_html("so....") == "so …."
    assert fix_html("......") == " … …"
    assert fix_html("a.. b") == "a.. b"
    assert fix_html("&hellip;") == "…"
    assert reduce(lambda t, r: r(t), defaults.text_proc_rules, "Wait... what!!!") == "xxbos xxmaj wait … what xxrep 3 !"


def test_replace_rep():
    assert replace_rep("aa") == "aa"
    assert replace_rep("aaa") == f" {TK_REP} 3 a "
    assert replace_rep("I'm so excited!!!!!!!!") == f"I'm so excited {TK_REP} 8 ! "
    assert replace_rep("😀😀😀😀") == f" {TK_REP} 4 😀 "
    assert replace_rep("   ") == "   "  # spaces are not characters to repeat
    assert replace_rep("") == "" and replace_rep("ab") == "ab"


def test_replace_wrep():
    assert replace_wrep("the the") == "the the"
    assert replace_wrep("I'm so so so so excited") == f"I'm {TK_WREP} 4 so  excited"
    assert replace_wrep("go go go.") == f" {TK_WREP} 3 go ."
    assert replace_wrep("ça ça ça") == f" {TK_WREP} 3 ça "
    assert replace_wrep("so so sore") == "so so sore"
    assert replace_wrep("") == ""


def test_spaces():
    assert spec_add_spaces("#fastai/tiers\\x") == " # fastai / tiers \\ x"
    assert spec_add_spaces("nothing") == "nothing"
    assert rm_useless_spaces("a  b   c \n  d") == "a b c \n d"
    assert rm_useless_spaces("") == ""


def test_case_rules_ascii_and_unicode():
    assert replace_all_caps("I'M SHOUTING") == f"{TK_UP} i'm {TK_UP} shouting"
    assert replace_all_caps("A sentence") == "a sentence"
    assert replace_all_caps("ÉCOLE and ΩMEGA") == f"{TK_UP} école and {TK_UP} ωmega"
    assert replace_all_caps("McDONALD x") == "McDONALD x"
    assert replace_maj("My name is Jeremy") == f"{TK_MAJ} my name is {TK_MAJ} jeremy"
    assert replace_maj("Über \n Éric McDonald") == f"{TK_MAJ} über \n {TK_MAJ} éric McDonald"
    assert replace_maj("(Mostly)") == "(Mostly)"
    assert replace_maj("") == replace_all_caps("") == ""


def test_lowercase_and_space():
    assert lowercase("  Hello ") == f"{BOS} hello"
    assert lowercase("X", add_bos=False, add_eos=True) == f"x {EOS}"
    assert lowercase("") == f"{BOS} "
    assert replace_space(["a b", "\n ", "c"]) == ["a▁b", "\n▁", "c"]
    assert replace_space([]) == []
    assert replace_space(["a\0b c", "d"]) == ["a\0b▁c", "d"]


text_st = st.text(alphabet=st.sampled_from(list("aAbBzZ éÉßΩω!?.,'/#\\\n\t<>&;0😀") + [" "] * 4), max_size=60)
word_text = st.lists(st.sampled_from(["the", "The", "THE", "so", "So", "a", "A", "ÉTÉ", "été", "Été", "x1",
                                      "McD", "!!!", "...", "\n", "—"]), max_size=25).map(" ".join)


ascii_text = st.text(alphabet=st.sampled_from(list("aAbBIzZ'.!,-1/\n") + [" "] * 4), max_size=60)


@settings(max_examples=400, deadline=None)
@given(st.one_of(text_st, word_text, ascii_text))
def test_fast_paths_equal_plain_regexes(t):
    up, low = rules._case_classes()
    all_caps = re.compile(rf"(?<!\S)([{up}]+[^{low}\s]*)(?!\S)")
    maj = re.compile(rf"(?<!\S)([{up}][^{up}\s]*)(?!\S)")

    def ref_caps(x):
        return all_caps.sub(lambda m: f"{TK_UP} {m.group(1).lower()}" if len(m.group(1)) > 1 else m.group(1).lower(), x)

    def ref_maj(x):
        return maj.sub(lambda m: f"{TK_MAJ} {m.group(1).lower()}", x)

    assert replace_all_caps(t) == ref_caps(t)
    assert replace_maj(t) == ref_maj(t)
    assert rules._caps_then_maj(t) == replace_maj(replace_all_caps(t)) == ref_maj(ref_caps(t))
    assert rules._caps_maj_lower(t) == lowercase(ref_maj(ref_caps(t)))
    assert replace_rep(t) == rules._re_rep.sub(rules._sub_rep, t)
    assert replace_wrep(t) == rules._re_wrep.sub(rules._sub_wrep, t)
    assert spec_add_spaces(t) == rules._re_spec.sub(r" \1 ", t)
    assert replace_space(t.split(" ")) == [w.replace(" ", "▁") for w in t.split(" ")]


@settings(max_examples=100, deadline=None)
@given(text_st)
def test_rule_chain_output_is_lowercase_and_starts_with_bos(t):
    out = apply_all(t)
    assert out.startswith(BOS)
    assert out == out.lower()
    assert "  " not in out
