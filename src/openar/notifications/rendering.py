"""Message templates: a small, safe subset of Django's template language.

Staff edit templates in the desk, so a template may only use the variables listed in
``VARIABLES`` (and the loop variables it defines), the ``if`` and ``for`` tags, and the
built-in filters. ``{% load %}``, ``{% include %}``, ``{% url %}`` and the rest are refused:
a template cannot read other templates, settings or anything outside its context.

``template_errors`` checks a subject and body and reports each problem with its line number;
``render`` turns a template and a context into a ``Draft`` (subject, plain text, and an
HTML version of the same text with paragraphs and live links).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.template import Context, Engine, Node, Template, TemplateSyntaxError
from django.template.base import FilterExpression, TextNode, Variable, VariableNode
from django.template.defaulttags import ForNode, IfNode
from django.utils.html import escape, urlize

from openar.notifications.services import Draft

VARIABLES: dict[str, str] = {
    "contact_name": "The person the message is addressed to (or the customer's name).",
    "customer_name": "The customer's name.",
    "customer_number": "The customer's account number.",
    "organization_name": "Your organization's name.",
    "organization_email": "Your organization's email address.",
    "organization_phone": "Your organization's phone number.",
    "total_past_due": "What is past due, with its currency (e.g. $1,250.00).",
    "total_open": "Everything still open, with its currency.",
    "oldest_due_date": "The due date of the oldest open invoice.",
    "days_past_due": "How many days the oldest open invoice is past due (0 when not yet due).",
    "invoices": "The open invoices; each has number, po_number, due_date, open_amount, days_late.",
    "invoice_count": "How many invoices are listed.",
    "pay_link": "A sign-in link that opens the past-due invoices (no password needed).",
    "easy_pay_link": "Easy Pay: a sign-in link that opens the payment page for what is past due.",
    "portal_link": "The portal's sign-in page.",
    "unsubscribe_link": "Stops reminder emails to this contact (shown on every reminder email).",
    "statement_attached": "True when the statement PDF is attached.",
}
INVOICE_FIELDS = ("number", "po_number", "due_date", "open_amount", "days_late")
ALLOWED_NODES = (TextNode, VariableNode, ForNode, IfNode)

_engine = Engine(debug=True, autoescape=False, libraries={}, builtins=["django.template.defaultfilters"])


@dataclass(frozen=True)
class TemplateProblem:
    part: str  # "subject" or "body"
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.part.capitalize()}, line {self.line}: {self.message}"


@functools.lru_cache(maxsize=512)
def _compile(source: str) -> Template:
    # The default tags (if, for, ...) come with every engine; everything else is checked
    # node by node in template_errors. Compiled once per text (a batch of reminders renders
    # the same few templates hundreds of times); a compiled template renders any context.
    return _engine.from_string(source)


def template_errors(subject: str, body: str) -> list[TemplateProblem]:
    """Every problem of the subject and body, with its line number; empty when fine."""
    problems: list[TemplateProblem] = []
    for part, source in (("subject", subject), ("body", body)):
        if part == "subject" and "\n" in source.strip():
            problems.append(TemplateProblem(part, 1, "The subject must be one line."))
        try:
            template = _compile(source)
        except TemplateSyntaxError as exc:
            debug = getattr(exc, "template_debug", None) or {}
            message = str(exc).strip()
            if "is not a registered tag library" in message:
                message = "Loading tag libraries ({% load %}) is not allowed in message templates."
            problems.append(TemplateProblem(part, int(debug.get("line", 1)), message))
            continue
        problems += [
            TemplateProblem(part, line, message) for line, message in _check(template.nodelist, set())
        ]
    return problems


def _line(node: Node) -> int:
    token = getattr(node, "token", None)
    return int(getattr(token, "lineno", 1) or 1)


def _check(nodelist: Any, bound: set[str]) -> Iterator[tuple[int, str]]:
    for node in nodelist:
        if not isinstance(node, ALLOWED_NODES):
            name = getattr(getattr(node, "token", None), "contents", type(node).__name__).split()[0]
            yield _line(node), f"The tag {{% {name} %}} is not allowed in message templates."
            continue
        if isinstance(node, VariableNode):
            yield from _check_expression(node.filter_expression, bound, _line(node))
        elif isinstance(node, ForNode):
            if isinstance(node.sequence, FilterExpression):
                yield from _check_expression(node.sequence, bound, _line(node))
            yield from _check(node.nodelist_loop, bound | set(node.loopvars) | {"forloop"})
            yield from _check(node.nodelist_empty, bound)
        elif isinstance(node, IfNode):
            for condition, branch in node.conditions_nodelists:
                if condition is not None:
                    for expression in _condition_expressions(condition):
                        yield from _check_expression(expression, bound, _line(node))
                yield from _check(branch, bound)


def _condition_expressions(condition: Any) -> Iterator[FilterExpression]:
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield value
    for side in ("first", "second"):
        child = getattr(condition, side, None)
        if child is not None:
            yield from _condition_expressions(child)


def _check_expression(expression: FilterExpression, bound: set[str], line: int) -> Iterator[tuple[int, str]]:
    variable = expression.var
    if not isinstance(variable, Variable) or variable.lookups is None:
        return  # a literal
    root = variable.lookups[0]
    if root in bound:
        if root != "forloop" and len(variable.lookups) > 1 and variable.lookups[1] not in INVOICE_FIELDS:
            yield (
                line,
                (f"An invoice has no “{variable.lookups[1]}”; use one of {', '.join(INVOICE_FIELDS)}."),
            )
        return
    if root not in VARIABLES:
        suggestion = _closest(root)
        hint = f" Did you mean “{suggestion}”?" if suggestion else ""
        yield line, f"Unknown variable “{root}”.{hint}"


def _closest(name: str) -> str:
    import difflib

    matches = difflib.get_close_matches(name, list(VARIABLES), n=1, cutoff=0.6)
    return matches[0] if matches else ""


def render(subject: str, body: str, context: Mapping[str, Any]) -> Draft:
    """The message as sent: subject and text from the template, and an HTML twin of the text
    (escaped, paragraphs, links made clickable). Links in the context are recorded."""
    data = Context(dict(context), autoescape=False)
    # One line, and no longer than a Message's subject can hold (a loop may make it long).
    rendered_subject = " ".join(_compile(subject).render(data).split())[:300]
    text = _tidy(_compile(body).render(data))
    links = tuple(
        str(context[name])
        for name in ("pay_link", "easy_pay_link", "portal_link", "unsubscribe_link")
        if context.get(name)
    )
    return Draft(rendered_subject, text, text_to_html(text), tuple(link for link in links if link in text))


def _tidy(text: str) -> str:
    """No runs of blank lines left by tags, no trailing spaces."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _html_line(line: str) -> str:
    # urlize is slow; most lines carry no link.
    return urlize(escape(line)) if "://" in line or "www." in line else str(escape(line))


def text_to_html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "\n".join(
        "<p>" + "<br>".join(_html_line(line) for line in paragraph.splitlines()) + "</p>"
        for paragraph in paragraphs
    )
    return (
        '<!DOCTYPE html><html lang="en"><body style="font-family:Arial,Helvetica,sans-serif;'
        'color:#0f172a;line-height:1.5;max-width:38rem;margin:0 auto;padding:1rem">'
        f"{body}</body></html>"
    )
