"""The local profile's critic: explicit checks of evidence (reflect) and of the final answer (quality gate)."""

from __future__ import annotations

import json
import re

from core.lang import detect_locale
from core.ports import Critique

_PRICE = re.compile(r"¥([\d,]+)")
_ORDER = re.compile(r"\b[A-Z]{2}-\d{4,10}\b")
_JA_CHAR = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _eligible(orders: list[dict], action: str) -> list[dict]:
    want = {"cancel": "processing", "return": "delivered"}.get(action)
    return [o for o in orders if o.get("status") == want]


class LocalCritic:
    """Rule critic. ``areview_evidence`` decides whether a specialist should think again (reflect);
    ``acritique`` checks an answer is grounded in the evidence and in the customer's language."""

    async def areview_evidence(self, agent: str, intent: str, request: str, evidence: list[dict]) -> Critique:
        """Critique the tool results of one think→execute round.

        Retry instructions understood by the local policies: ``broaden`` (search found nothing),
        ``drop_seeds`` (recommend found nothing), ``act:<cancel|return>:<order_id>`` (one eligible order).
        """
        kinds = {e.get("kind") for e in evidence}
        if agent == "search" and "search" in kinds and not any(e.get("items") for e in evidence if e.get("kind") == "search"):
            return Critique(ok=False, problems=["no catalog match"], retry_instructions="broaden")
        if agent == "recommend" and "recommend" in kinds and not any(e.get("items") for e in evidence):
            return Critique(ok=False, problems=["no picks"], retry_instructions="drop_seeds")
        if agent == "order" and kinds == {"orders"}:
            from tools.backends.models.text_rules import order_action  # local rules, same profile

            action = order_action(request)
            if action in ("cancel", "return"):
                orders = [o for e in evidence for o in e.get("orders") or []]
                eligible = _eligible(orders, action)
                if len(eligible) == 1:
                    return Critique(ok=False, problems=["order id missing; one eligible order"],
                                    retry_instructions=f"act:{action}:{eligible[0]['order_id']}")
                return Critique(ok=True, problems=["order id missing"], retry_instructions=f"ask which:{action}")
        return Critique(ok=True)

    async def acritique(self, answer: str, evidence: list[dict], locale: str) -> Critique:
        """Quality gate: every price and order id in ``answer`` occurs in ``evidence``; language matches.

        English answers may quote Japanese titles, so 'en' fails only when most letters are Japanese.
        """
        problems: list[str] = []
        blob = json.dumps(evidence, ensure_ascii=False)
        prices_in_evidence = set(re.findall(r'"(?:price_jpy|total_jpy|refund_jpy|unit_price_jpy)": (\d+)', blob))
        prices_in_evidence |= {p.replace(",", "") for p in _PRICE.findall(blob)}
        for p in _PRICE.findall(answer):
            if p.replace(",", "") not in prices_in_evidence:
                problems.append(f"price ¥{p} not in evidence")
        for oid in set(_ORDER.findall(answer)):
            if oid not in blob:
                problems.append(f"order {oid} not in evidence")
        if locale == "ja" and detect_locale(answer) != "ja":
            problems.append("answer is not in Japanese")
        if locale == "en":
            letters = [c for c in answer if c.isalpha()]
            if letters and sum(1 for c in letters if _JA_CHAR.match(c)) / len(letters) > 0.5:
                problems.append("answer is not in English")
        return Critique(ok=not problems, problems=problems)
