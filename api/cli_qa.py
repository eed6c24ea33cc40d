"""``citeqa ask`` and ``citeqa chat``: answer questions from the index on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from index.errors import InvalidRequest
from index.settings import Settings
from qa.types import Answer, Message


def parse_history(raw: str) -> list[Message]:
    """Earlier turns as a JSON list of ``{role, content}`` (a JSON string or ``@file``)."""
    text = Path(raw[1:]).read_text(encoding="utf-8") if raw.startswith("@") else raw
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"--history is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise InvalidRequest("--history must be a JSON list of {role, content} objects")
    messages = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("role") not in ("system", "user", "assistant"):
            raise InvalidRequest(f"--history item {i} needs a role of system, user or assistant")
        if not isinstance(item.get("content"), str):
            raise InvalidRequest(f"--history item {i} needs a string content")
        messages.append(Message(role=item["role"], content=item["content"]))
    return messages


def render_answer(answer: Answer) -> str:
    """The answer text, then its numbered citations (or the see-also passages of a refusal)."""
    lines = [answer.text, ""]
    if answer.notice:
        lines.insert(0, f"note: {answer.notice}")
    refs = answer.see_also if answer.refused else answer.citations
    if refs:
        lines.append("See also (closest passages, not an answer):" if answer.refused else "Sources:")
    for c in refs:
        where = f" {c.url}" if c.url else ""
        lines.append(f"  [{c.n}] {c.label()}{where}")
        lines.append(f'      "{c.quote}"  (doc {c.doc_id}, chars {c.start}-{c.end})')
    return "\n".join(lines).rstrip()


def _service(settings: Settings) -> Any:
    from api.cli import open_index
    from qa.service import QAService

    return QAService(index=open_index(settings), settings=settings)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    """Answer one question from the indexed documents, with citations."""
    history = parse_history(args.history) if args.history else []
    answer = _service(settings).ask(args.question, history=history, top_k=args.top_k, answerer=args.answerer)
    print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False) if args.json else render_answer(answer))
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """Interactive multi-turn chat; follow-up questions use the earlier turns."""
    service = _service(settings)
    history: list[Message] = []
    print("citeqa chat: ask about the indexed documents (empty line or Ctrl-D to quit)", file=sys.stderr)
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            break
        try:
            answer = service.ask(question, history=history, answerer=args.answerer)
        except InvalidRequest as exc:
            print(f"citeqa: {exc}", file=sys.stderr)
            continue
        print(render_answer(answer) + "\n")
        history += [Message("user", question), Message("assistant", answer.text)]
    return 0


def register(sub: Any) -> None:
    ask = sub.add_parser("ask", help=cmd_ask.__doc__)
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the full answer object")
    ask.add_argument("--history", help='earlier turns: JSON list of {"role","content"} or @file.json')
    ask.add_argument("--top-k", type=int, default=None, help="passages handed to the answerer")
    ask.add_argument("--answerer", choices=["extractive", "llm"], default=None)
    ask.set_defaults(func=cmd_ask)
    chat = sub.add_parser("chat", help=cmd_chat.__doc__)
    chat.add_argument("--answerer", choices=["extractive", "llm"], default=None)
    chat.set_defaults(func=cmd_chat)
