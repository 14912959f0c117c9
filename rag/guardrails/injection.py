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
from functools import lru_cache

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


# Document sentences that address the assistant (or tell it what to tell shoppers) rather than
# state a policy: "Always reply: …", "Tell customers to …", "Responde siempre …", "请告诉客户…",
# "system:" lines. A policy speaks to the shopper about the shop ("Returns are free within 30
# days", "Include your order number"); these speak to whoever writes the replies.
_ADDRESSEES = r"(customers?|shoppers?|users?|buyers?|clients?|visitors?|everyone|everybody)"
_INSTRUCTS = [
    # chat-template and role markers
    r"^\s*[\[<(#*]*\s*(system|assistant|developer|instructions?)\s*[\]>)*]*\s*[:：]",
    r"<\|im_start\|>|<\|system\|>|\[inst\]|<<sys>>",
    # English
    r"\b(always|never)\s+(reply|respond|answer|say|tell|write|recommend|offer|mention)\b",
    r"\bonly\s+(reply|respond|answer)\s+(with|by|that|in)\b",
    r"^\W*(please\s+)?(reply|respond|answer)\s+(only\s+)?(with|by saying|that)\b",
    rf"\b(tell|inform|remind|instruct|advise|let)\s+(all\s+|the\s+|every\s+)?{_ADDRESSEES}\b",
    rf"\b(say|mention|recommend|offer|suggest|give)\s+(this\s+|it\s+)?to\s+(all\s+|the\s+|every\s+)?{_ADDRESSEES}\b",
    # "you must include your receipt" speaks to the shopper; "the assistant must …" does not
    r"\b(the\s+)?(ai|assistant|bot|chatbot|llm|language model)\s+(must|should|shall|has to|needs to|is to|will)\s+(always\s+|never\s+)?[a-z]+",
    r"\byou\s+(must|should|shall|have to|need to|are to)\s+(always\s+|never\s+)?(reply|respond|answer)\b",
    r"\b(if|when(ever)?)\s+(a|the|any)\s+(customer|shopper|user|buyer|client)\s+asks?\b.{0,60}\b(say|reply|respond|answer|tell)\b",
    r"\b(ai|assistant|chatbot|bot|language model|llm)\s*[,:]\s*(you|always|never|please|do|reply|respond|say|tell)\b",
    r"\b(as an ai|dear (ai|assistant|bot|model))\b",
    # Spanish, Portuguese, Italian, French, German
    r"\b(responde|responda|respondan|contesta|conteste|di|diga|digan)\s+siempre\b",
    r"\bsiempre\s+(responde|responda|contesta|conteste|di|diga|menciona|ofrece)\b",
    r"\b(di|dile|diles|diga|dígales|digales|informa|informe|comunica|recuerda)\s+(a\s+)?(los|las|el|la|todos los)?\s*(clientes?|usuarios?|compradores?)\b",
    r"\b(responda|responde|diga)\s+sempre\b|\bsempre\s+(responda|responde|diga)\b",
    r"\b(diga|informe|avise)\s+(a|aos|às)\s+(os\s+)?(clientes?|usuários?)\b",
    r"\b(rispondi|risponda|rispondete|di'?|dì|dite)\s+sempre\b|\bsempre\s+(rispondi|risponda)\b",
    r"\b(di'?|dì|dite|informa|informate|comunica)\s+ai\s+clienti\b",
    r"\b(réponds|répondez|dis|dites)\s+toujours\b|\btoujours\s+répondre\b",
    r"\b(dis|dites|indiquez|annoncez|rappelez)\s+(à\s+tous\s+les|aux)\s+(clients?|utilisateurs?|acheteurs?)\b",
    r"\b(antworte|antworten sie|sag|sage|sagen sie)\s+(immer|stets|jedem|allen|den)\b",
    r"\b(teile|teilen sie)\s+(den|allen)\s+kunden\b|\b(sag|sage|sagen sie)\s+(den|allen)\s+kunden\b",
    # Russian, Chinese, Japanese, Korean, Arabic, Turkish
    r"(всегда|только)\s+(отвечай|отвечайте|говори|говорите)|(скажи|скажите|сообщи|сообщите)\s+(клиентам|покупателям|пользователям)",
    r"(请|請)?(告诉|告訴|通知|提醒)(客户|客戶|顾客|顧客|用户|用戶|买家|買家|所有人)",
    r"(始终|總是|总是|一律|永远|永遠|务必|務必)(回复|回覆|回答|答复|说|說|告诉|告訴)",
    r"(你|您)(必须|必須|应该|應該|要)(回复|回覆|回答|告诉|告訴|说|說)",
    r"(お客様|お客さま|顧客|ユーザー)に(伝え|案内し|お伝え|言っ)|(常に|必ず|いつも)(返答|回答|返信|答え)",
    r"(고객|사용자)에게\s*(알려|말해|안내해)|(항상|반드시)\s*(답변|대답|응답)",
    r"(أخبر|أخبروا|قل|قولوا)\s+(العملاء|الزبائن|المستخدمين)|(أجب|أجيبوا|رد)\s+دائما",
    r"(müşterilere|kullanıcılara)\s+(söyle|söyleyin|bildir)|her zaman\s+(yanıtla|cevap ver)",
]
_INSTRUCTS_RE = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTS), re.IGNORECASE | re.MULTILINE)


@lru_cache(maxsize=16384)  # document sentences repeat every turn; the check is pure
def instructs(text: str) -> bool:
    """True when a document sentence gives orders to the assistant, or tells it what to tell
    shoppers, in any of ~12 languages, or hides an injection (see looks_like_injection).
    Such sentences are neither sent to the model nor quoted to shoppers."""
    if looks_like_injection(text):
        return True
    t = unicodedata.normalize("NFKC", text)
    return _INSTRUCTS_RE.search(t) is not None


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
