"""Prompt-injection defence: screen shopper messages and documents, and check replies for leaks.

Instructions inside a shopper's message or a retrieved document never reach the model as
instructions: a flagged message gets a polite refusal without an LLM call, flagged document
sentences are dropped from the context, and a reply that echoes the system rules or shows a
code-like token (a voucher, say) that the context does not contain is blocked.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

# Multilingual signatures of instruction hijacking; matched on a normalised, de-spaced form
# too, so that "i g n o r e  previous" and homoglyphs are caught.
_PATTERNS = [
    r"ignore (all |any |the )?(previous|prior|above|earlier|your) (instructions|rules|prompts?|directions)",
    r"disregard (all |the |your )?(previous|prior|above)? ?(instructions|rules)",
    r"forget (all |your |the )?(previous |prior )?(instructions|rules)",
    r"(system|hidden|initial|original) prompt",
    # asking for a code is a fair question (the KB answers or kefu does not know); *telling*
    # the assistant what a code is, is not
    r"(the|your) (discount|voucher|coupon|promo) code is|(say|tell (them|customers|everyone)) (that )?the code",
    r"(reveal|print|show|repeat|output|translate|tell me) (me )?(your|the) (system |hidden )?(instructions|rules|prompt|configuration)",
    r"what (are|were) your (instructions|rules)",
    r"you are now|act as (an? )?(admin|administrator|developer|dan)|developer mode|jailbreak|\bdan\b",
    r"note to (the )?(ai|assistant|bot|model)|ai assistant:|to the (ai|assistant|chatbot)",
    r"(another|other|previous|last) (customer|user|shopper)'?s? (order|email|address|data|details)",
    r"忽略(之前|以前|上面|所有)?的?(指令|指示|规则|说明)",
    r"(系统|系統)提示",
    r"你现在是|扮演",
    r"ignora (todas )?(las )?instrucciones|instrucciones (anteriores|previas)",
    r"ignore[zr]? (toutes )?(les )?instructions|instructions précédentes",
    r"ignoriere (alle )?(vorherigen )?anweisungen",
    r"игнорируй|предыдущие инструкции|системн(ый|ого) промпт",
    r"تجاهل|التعليمات السابقة",
    r"(以前|前)の指示を無視|指示を無視|システムプロンプト",
    r"ignore (todas )?as instruções|instruções anteriores",
    r"ignora (tutte )?le istruzioni|istruzioni precedenti",
    r"önceki talimatları|talimatları yok say",
    r"이전 지시|지시를 무시|시스템 프롬프트",
]
_RE = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)
_B64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}\s?){12,}\b")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)


def _variants(text: str) -> list[str]:
    t = unicodedata.normalize("NFKC", text).casefold()
    out = [t, t.translate(_LEET)]
    # letters spaced out: "i g n o r e"
    if re.search(r"(?:\b\w\s){4,}", t):
        out.append(re.sub(r"(?<=\b\w)\s(?=\w\b)", "", t))
    out.append(codecs.decode(t, "rot13"))
    for m in _B64.finditer(text):
        try:
            decoded = base64.b64decode(m.group(0) + "=" * (-len(m.group(0)) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        out.append(decoded.casefold())
    for m in _HEX.finditer(text):
        try:
            out.append(bytes.fromhex(m.group(0).replace(" ", "")).decode("utf-8").casefold())
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def looks_like_injection(text: str) -> bool:
    """True when the text tries to give the assistant instructions (in any of ~12 languages,
    spaced out, leetspeak, ROT13, base64 or hex encoded)."""
    return any(_RE.search(v) for v in _variants(text))


_CODE = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9][A-Z0-9-]{3,19}\b")


def leaks(reply: str, *, system_prompt: str, context: list[str]) -> str | None:
    """Why a reply must not be shown (it quotes the rules or shows an unknown code), or None."""
    norm = " ".join(reply.casefold().split())
    rules = [" ".join(line.casefold().split()) for line in system_prompt.splitlines()]
    for line in rules:
        words = line.split()
        for i in range(max(0, len(words) - 7)):
            if " ".join(words[i : i + 8]) in norm:
                return "quotes the system rules"
    known = " ".join(context)
    for m in _CODE.finditer(reply):
        token = m.group(0)
        if token not in known and not token.replace("-", "").isdigit():
            return f"shows a code-like token {token!r} that is not in the knowledge base"
    return None
