"""Instruction filters: named rules that drop mined instructions which are not coding requests, after
dedup and before the difficulty judges see them (judges gave 9-10 to digit soup such as
"1-3 of 4 (18 out of 21)" and to the model answering itself: "Certainly! I'd be happy to help...").

In the manner of datatrove's filters, each rule is a small class with a ``name`` and a
``check(text) -> detail | None``; :class:`InstructionFilters` runs the configured rules in a fixed
order (:data:`RULE_ORDER`) and the first that fires gives the drop reason, ``filter:<name>``.
Everything here is a pure, deterministic function of the text and the settings (``filters:``).

The rules, in the order they are tried:

* ``markup_junk``: a chat-template token left in the text (``<|im_start|>``, ``[INST]``, ``</s>``,
  ...); prose more than ``max_tag_share`` HTML/XML tags (``<em>...</em>``); prose whose letters are
  less than ``min_letter_share`` of its non-space characters (digit and punctuation soup); one
  character (not a digit) more than ``max_char_run`` times in a row; one word more than
  ``max_word_repeats`` times in a row; one sentence more than ``max_sentence_repeats`` times.
* ``language``: prose mostly (``min_script_share``) outside the script of the configured natural
  language (``natural``, e.g. ``en``: Latin); for a Latin-script language, prose whose common words
  are clearly another Latin-script language's (``stopwords``); or (``programming``) a request for
  another programming language than ``mining.language``: another language named as the target
  ("convert it to Go") while ours is not, or named in a request context ("in Rust", "a JavaScript
  function") while ours is not named at all. ``allowed_programming`` names languages to let through.
* ``self_answer``: the model answering itself: an assistant opener ("Certainly!", "Sure,", "Of
  course", "I'd be happy to help", "As an AI", "Here is the code" with no request after it, ...); or
  a solution instead of a request: text that starts with code, or is more than ``max_code_share``
  code, with no request in its prose (a docstring or comment with code after it belongs to the
  solution; HumanEval's signature plus docstring is a request).
* ``too_few_words``: fewer than ``min_words`` words (runs of letters, digits and underscores with at
  least one letter).
* ``no_task``: no question mark and no request cue: no task verb (write, implement, fix, explain,
  return, given, ...; base form, -s or -ing), no request phrase (how to, can you, I need, please,
  should, ...), and no verb or question word opening a sentence ("List the files", "What is ...").
  ``extra_request_words`` adds cues.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from warriorflow.config.settings import FiltersSettings

REASON_PREFIX = "filter:"

# ----------------------------------------------------------------------------------------- the text


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"',
                         "\u00bb": '"'})
_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_TRIPLE = re.compile(r'"""|\'\'\'')
_COMMENT_LINE = re.compile(r"^\s*(#(?!include)|//)")
_CODE_LINE = re.compile(
    r"^\s*(?:"
    r"(?:async\s+)?def\s+\w+\s*\(|class\s+\w+\s*[(:]|import\s+[\w.]+|from\s+[\w.]+\s+import\b|"
    r"return\b|yield\b|raise\b|assert\b|print\s*\(|(?:pass|break|continue)\s*$|"
    r"(?:for|while|if|elif|with|except)\b.*:\s*$|(?:else|try|finally)\s*:\s*$|@\w[\w.]*|"
    r"[A-Za-z_][\w.]*(?:\[[^\]\n]*\])?(?:\s*,\s*[A-Za-z_][\w.]*)*\s*(?:[-+*/%|&^]|//|\*\*|>>|<<)?=(?!=)\s*\S|"
    r"[A-Za-z_][\w.]*\s*\([^\n]*\)\s*;?\s*$|"
    r"#include\b|(?:function|fn|func|void|int)\s+\w+\s*\(|(?:const|let|var)\s+\w+\s*=|"
    r"(?:public|private|protected|static)\s+\w|package\s+[\w.]+;?\s*$|"
    r"[{}()\[\];,]+\s*$|.*[{;]\s*$|>>>"
    r")"
)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_WORD = re.compile(r"\w*[^\W\d_]\w*")
_LETTER_RUN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_QUOTED = re.compile(r'"[^"\n]*"|(?<!\w)\'[^\'\n]*\'(?!\w)')


@dataclass
class Text:
    """One instruction, read once: NFKC-normalised, with its lines classified as prose, code, comment
    or docstring (fenced blocks are code)."""

    raw: str

    @cached_property
    def text(self) -> str:
        text = unicodedata.normalize("NFKC", self.raw).translate(_QUOTES)
        return "".join(c for c in text if unicodedata.category(c) != "Cf").strip()  # zero-width and BOM out

    @cached_property
    def lines(self) -> list[tuple[str, str]]:
        """(kind, line) for every line: kind is prose, code, comment, doc, doctest, fence or blank."""
        out: list[tuple[str, str]] = []
        in_fence = in_doc = False
        for line in self.text.splitlines():
            if _FENCE_LINE.match(line):
                in_fence = not in_fence
                out.append(("fence", line))
            elif in_fence:
                out.append(("code", line))
            elif in_doc:
                # doctest examples (">>> call" and the expected output after it) are code
                after_example = bool(out) and out[-1][0] == "doctest" and out[-1][1].lstrip().startswith(">>>")
                closes = len(_TRIPLE.findall(line)) % 2 == 1
                example = line.lstrip().startswith(">>>") or (after_example and line.strip() and not closes)
                out.append(("doctest" if example else "doc", line))
                in_doc = not closes
            elif not line.strip():
                out.append(("blank", line))
            elif (quotes := len(_TRIPLE.findall(line))) and (line.lstrip()[:3] in ('"""', "'''") or
                                                           _CODE_LINE.match(line.split('"""')[0].split("'''")[0])):
                # a docstring (or a string assigned in code) opens here; text after a code head is doc
                out.append(("doc", line))
                in_doc = quotes % 2 == 1
            elif _COMMENT_LINE.match(line):
                out.append(("comment", line))
            elif _CODE_LINE.match(line):
                out.append(("code", line))
            else:
                out.append(("prose", line))
        return out

    def _joined(self, kinds: Iterable[str]) -> str:
        wanted = set(kinds)
        return "\n".join(line for kind, line in self.lines if kind in wanted)

    @cached_property
    def prose(self) -> str:
        """The natural-language part: prose lines, comments and docstrings, without inline code."""
        return _INLINE_CODE.sub(" ", self._joined(("prose", "comment", "doc")))

    @cached_property
    def request_text(self) -> str:
        """Where a request may be: prose lines, plus comments and docstrings that are not inside a
        solution (those before the first code line or after the last one)."""
        kinds = [k for k, _ in self.lines]
        code_at = [i for i, k in enumerate(kinds) if k == "code"]
        first, last = (code_at[0], code_at[-1]) if code_at else (len(kinds), -1)
        keep = [line for i, (k, line) in enumerate(self.lines)
                if k == "prose" or (k in ("comment", "doc") and (i < first or i > last))]
        return _INLINE_CODE.sub(" ", "\n".join(keep))

    @cached_property
    def starts_with_code(self) -> bool:
        first = next((k for k, _ in self.lines if k != "blank"), None)
        return first in ("code", "fence")

    @cached_property
    def code_share(self) -> float:
        """Share of the non-space characters that are code lines (fences included)."""
        total = code = 0
        for kind, line in self.lines:
            n = len("".join(line.split()))
            total += n
            code += n if kind in ("code", "fence") else 0
        return code / total if total else 0.0

    @cached_property
    def words(self) -> list[str]:
        return _WORD.findall(self.text)

    @cached_property
    def prose_words(self) -> list[str]:
        """Lower-case words of the prose outside quotes (for function-word counts)."""
        return [w.lower() for w in _LETTER_RUN.findall(_QUOTED.sub(" ", self.prose))]


# ----------------------------------------------------------------------------------------- the rules


class Rule(Protocol):
    name: str

    def check(self, text: Text) -> str | None:
        """A short description of why ``text`` fails this rule, or None when it passes."""


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted({re.escape(w) for w in words}, key=lambda w: (-len(w), w)))


# --- markup_junk

_TEMPLATE_TOKEN = re.compile(
    r"<\|[^<>|\s]{1,40}\|>|\[/?INST\]|<</?SYS>>|<(?:start_of_turn|end_of_turn|eos|bos|unk|pad|mask)>|</s>"
)  # matched after NFKC, which turns DeepSeek's fullwidth <｜...｜> into <|...|>
_TAG = re.compile(r"</?[A-Za-z][\w-]{0,20}(?:\s[^<>\n]{0,80})?/?>")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n")
_CHAR_RUN_TEMPLATE = r"([^\s\d])\1{%d,}"
_WORD_RUN_TEMPLATE = r"(?<!\w)([^\W\d_]+)(?:\s+\1(?!\w)){%d,}"  # the same word, only spaces between


@dataclass(frozen=True)
class MarkupJunk:
    """Template tokens, HTML/XML tags, digit/punctuation soup, runs of one character or word, repeated
    sentences."""

    min_letter_share: float = 0.45
    max_tag_share: float = 0.2
    max_char_run: int = 16
    max_word_repeats: int = 4
    max_sentence_repeats: int = 2
    template_tokens: bool = True
    name: str = "markup_junk"

    def check(self, text: Text) -> str | None:
        if self.template_tokens and (m := _TEMPLATE_TOKEN.search(text.text)):
            return f"template token {m.group(0)!r}"
        prose = "".join(text.prose.split())
        if prose and (tags := sum(len(t) for t in _TAG.findall(text.prose))) / len(prose) > self.max_tag_share:
            return f"HTML/XML tags are {tags / len(prose):.0%} of the prose (> {self.max_tag_share:.0%})"
        if prose:
            letters = sum(c.isalpha() for c in prose)
            share = letters / len(prose)
            if share < self.min_letter_share:
                return f"letters are {share:.0%} of the prose's characters (< {self.min_letter_share:.0%})"
        if m := re.search(_CHAR_RUN_TEMPLATE % self.max_char_run, text.prose):
            return f"{m.group(1)!r} repeated {len(m.group(0))} times in a row"
        if m := re.search(_WORD_RUN_TEMPLATE % self.max_word_repeats, text.prose, re.IGNORECASE):
            return f"the word {m.group(1)!r} repeated {len(m.group(0).split())} times in a row"
        sentences = Counter(" ".join(x.lower().split()) for x in _SENTENCE_SPLIT.split(text.prose)
                            if len(x.strip()) >= 10)
        if sentences and (top := sentences.most_common(1)[0])[1] > self.max_sentence_repeats:
            return f"the sentence {top[0][:40]!r} repeated {top[1]} times"
        return None


# --- language

# The script each supported natural language is written in (unicodedata names start with these).
SCRIPTS = {
    "en": ("LATIN",), "es": ("LATIN",), "fr": ("LATIN",), "de": ("LATIN",), "pt": ("LATIN",), "it": ("LATIN",),
    "nl": ("LATIN",), "ru": ("CYRILLIC",), "uk": ("CYRILLIC",), "el": ("GREEK",), "zh": ("CJK",),
    "ja": ("CJK", "HIRAGANA", "KATAKANA"), "ko": ("HANGUL", "CJK"), "ar": ("ARABIC",), "he": ("HEBREW",),
    "hi": ("DEVANAGARI",),
}
# Common words of the Latin-script languages (a few are shared between the Romance languages; what counts is
# whether the configured language's words are clearly outnumbered).
STOPWORDS = {
    "en": frozenset("the and of to is are that this with which from what how be it for an or not you can "
                    "should each given write function returns".split()),
    "es": frozenset("el la los las y es son que una un del por para con cómo qué escribe función cada se "
                    "devuelve dado".split()),
    "fr": frozenset("le les et est sont une un du des pour avec comment quel quelle qui écrire écrivez fonction "
                    "chaque retourne renvoie donné".split()),
    "de": frozenset("der die das und ist sind ein eine einen mit für wie was nicht schreibe schreiben "
                    "funktion jede gibt zurück gegeben".split()),
    "pt": frozenset("o os as e é são uma um do da dos das por para com como escreva função cada retorna "
                    "dado não".split()),
    "it": frozenset("il lo gli e è sono una un del della per con come che scrivi funzione ogni restituisce "
                    "dato non".split()),
    "nl": frozenset("de het een en is zijn van voor met hoe wat niet schrijf functie elke geeft gegeven".split()),
}


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return "UNKNOWN"


# Programming languages by name: (pattern, case-sensitive). Names that are ordinary words (Go, Rust,
# Swift, C, R, ...) match only as written with a capital; every name counts only in a request context
# (see _name_regex).
LANGUAGE_PATTERNS: dict[str, tuple[str, bool]] = {
    "Python": (r"python[23]?|py", False),
    "JavaScript": (r"javascript|js|node\.?js|ecmascript", False),
    "TypeScript": (r"typescript", False),
    "Java": (r"java", False),
    "C": (r"C|ANSI C", True),
    "C++": (r"c\+\+|cpp", False),
    "C#": (r"c#|c sharp|csharp", False),
    "Go": (r"Go|Golang|golang", True),
    "Rust": (r"Rust|rust", True),
    "Ruby": (r"Ruby|ruby", True),
    "PHP": (r"php", False),
    "Swift": (r"Swift|swift", True),
    "Kotlin": (r"kotlin", False),
    "Scala": (r"scala", False),
    "R": (r"R", True),
    "Perl": (r"perl", False),
    "Haskell": (r"haskell", False),
    "Lua": (r"lua", False),
    "MATLAB": (r"matlab", False),
    "Julia": (r"Julia", True),
    "Dart": (r"Dart|dart", True),
    "Elixir": (r"elixir", False),
    "Erlang": (r"erlang", False),
    "Clojure": (r"clojure", False),
    "F#": (r"f#", False),
    "OCaml": (r"ocaml", False),
    "Fortran": (r"fortran", False),
    "COBOL": (r"cobol", False),
    "Pascal": (r"Pascal", True),
    "Lisp": (r"lisp|common lisp", False),
    "Objective-C": (r"objective-c", False),
    "Visual Basic": (r"visual basic|vb\.net|vba", False),
    "Assembly": (r"assembly|x86 assembly|asm", False),
    "Bash": (r"bash|zsh|powershell|shell(?= script)", False),
    "SQL": (r"sql|mysql|postgresql|t-sql|pl/sql", False),
    "HTML": (r"html", False),
    "CSS": (r"css", False),
    "Solidity": (r"solidity", False),
    "Zig": (r"Zig", True),
    "Verilog": (r"verilog|vhdl", False),
}
_BEFORE = r"(?:in|using|into|to|use|with|for)\s+(?:the\s+|a\s+|an\s+)?"
_AFTER = (r"(?:code|codes|function|functions|program|programs|script|scripts|class|classes|method|methods|snippet|"
          r"implementation|solution|module|library|package|app|application|version|developer|syntax|language|"
          r"compiler|interpreter|equivalent|project|file|api|framework|macro|struct|trait|interface|query|queries|"
          r"statement|command|one-liner|program's|server|backend|frontend|component|routine|procedure|page|"
          r"stylesheet|template)\b")
_TARGET = r"(?:to|into)\s+(?:the\s+)?"
_ONE_LETTER = re.compile(r"(?<![\w'#+.-])([A-Z])(?![\w'#+-])")
_SUFFIX_ONLY = frozenset({"R"})  # a one-letter name that is as often a variable: only "R code", "R script", ...


def _name_regex(name: str, target_only: bool = False) -> re.Pattern:
    pattern, case = LANGUAGE_PATTERNS.get(name, (re.escape(name), False))
    core = rf"(?<![\w#+])(?:{pattern})(?![\w#+]|-\w|'s)"
    if target_only:
        ctx = rf"\b{_TARGET}{core}"
    elif name in _SUFFIX_ONLY:
        ctx = rf"{core}\s+{_AFTER}"
    else:
        ctx = rf"\b{_BEFORE}{core}|{core}\s+{_AFTER}"
    return re.compile(ctx, 0 if case else re.IGNORECASE)


@dataclass(frozen=True)
class Language:
    """Another natural language (script, then function words) or another programming language."""

    natural: str | None = "en"
    min_script_share: float = 0.5
    stopwords: bool = True
    programming: str | None = "Python"
    allowed_programming: tuple[str, ...] = ()
    min_letters: int = 8
    name: str = "language"

    @cached_property
    def _others(self) -> list[tuple[str, re.Pattern, re.Pattern]]:
        ours = {self.programming.lower()} if self.programming else set()
        ours |= {a.lower() for a in self.allowed_programming}
        return [(n, _name_regex(n), _name_regex(n, True)) for n in LANGUAGE_PATTERNS if n.lower() not in ours]

    @cached_property
    def _ours(self) -> tuple[re.Pattern, re.Pattern] | None:
        if not self.programming:
            return None
        name = next((n for n in LANGUAGE_PATTERNS if n.lower() == self.programming.lower()), self.programming)
        pattern, _ = LANGUAGE_PATTERNS.get(name, (re.escape(name), False))
        return re.compile(rf"(?<![\w#+])(?:{pattern})(?![\w#+])", re.IGNORECASE), _name_regex(name, True)

    def check(self, text: Text) -> str | None:
        return self._natural(text) or self._programming(text)

    def _natural(self, text: Text) -> str | None:
        if not self.natural:
            return None
        letters = [c for c in _QUOTED.sub(" ", text.prose) if c.isalpha()]  # quoted data is not the language
        if len(letters) < self.min_letters:
            letters = [c for c in text.prose if c.isalpha()]
        if len(letters) >= self.min_letters:
            scripts = SCRIPTS[self.natural]
            share = sum(_script(c) in scripts for c in letters) / len(letters)
            if share < self.min_script_share:
                found = Counter(_script(c) for c in letters).most_common(1)[0][0].lower()
                return f"mostly {found} script, not {self.natural} ({share:.0%} of the letters)"
        if self.stopwords and self.natural in STOPWORDS:
            hits = {lang: sum(w in words for w in text.prose_words) for lang, words in STOPWORDS.items()}
            ours = hits.pop(self.natural)
            other, n = max(sorted(hits.items()), key=lambda kv: kv[1])
            if n >= 4 and n > 2 * ours:
                return f"reads as {other}, not {self.natural} ({n} {other} common words, {ours} {self.natural})"
        return None

    def _programming(self, text: Text) -> str | None:
        if self._ours is None:
            return None
        ours_named, ours_target = self._ours
        search = text.text
        # a one-letter name (C, R) among other one-letter names ("matrices A and B ... in C") is a variable
        letters = set(_ONE_LETTER.findall(search)) - {"A", "I"}
        others = [o for o in self._others if len(o[0]) > 1 or not letters - {o[0]}]
        targets = [n for n, _, target in others if target.search(search)]
        named = [n for n, any_ctx, _ in others if any_ctx.search(search)]
        if targets and not ours_target.search(search):
            return f"asks for {targets[0]}, not {self.programming}"
        if named and not ours_named.search(search):
            return f"asks for {named[0]}, not {self.programming}"
        return None


# --- self_answer

_OPENERS = re.compile(
    r"^(?:certainly\b|sure\s*[,!.:]|sure thing\b|of course\b|absolutely\s*[,!.]|definitely\s*[,!.]|"
    r"(?:great|good|excellent|interesting) question\b|"
    r"i(?:'d| would)\s+(?:be\s+)?(?:happy|glad|delighted)\s+to\b|i(?:'m| am)\s+(?:happy|glad|delighted)\s+to\b|"
    r"(?:happy|glad) to help\b|i can help\b|i'll help\b|let me (?:help|explain|show|walk|write|provide)\b|"
    r"as an ai\b|as a (?:helpful )?(?:ai|language model|assistant)\b|"
    r"(?:okay|ok|alright|all right)\s*[,!.]\s*(?:here|let's|let me|i'll|i will)\b|"
    r"(?:answer|solution|assistant|response)\s*:|"
    r"to (?:\w+ ){0,8}?\w+,?\s+(?:you|we) can\b|"
    r"below is (?:the|a|an|my|one)\b)",
    re.IGNORECASE,
)
_HERE = re.compile(
    r"^here(?:'s| is| are)\s+(?:how\s+(?:you|to|we|i)\b|(?:the|a|an|your|one|some)\s+(?:\w+\s+){0,3}?"
    r"(?:solution|implementation|answer|code|function|program|script|version|example|approach|snippet)s?\b)",
    re.IGNORECASE,
)
_ANYWHERE = re.compile(r"\bas an ai language model\b|\bi hope (?:this|that) helps\b|\bhappy coding\b", re.IGNORECASE)
_LEAD = re.compile(r"^[\s\"'*_#>`~\-]+")


@dataclass(frozen=True)
class SelfAnswer:
    """An assistant opener, or code with no request in it (a solution, not a task)."""

    max_code_share: float = 0.6
    request: Request = field(default_factory=lambda: Request())
    name: str = "self_answer"

    def check(self, text: Text) -> str | None:
        head = _LEAD.sub("", text.text)
        if m := _OPENERS.match(head):
            return f"assistant opener {m.group(0).strip()!r}"
        if (m := _HERE.match(head)) and "?" not in text.prose and not self.request.imperative(text.request_text):
            return f"assistant opener {m.group(0).strip()!r}"
        if m := _ANYWHERE.search(text.text):
            return f"assistant phrase {m.group(0)!r}"
        if (text.starts_with_code or text.code_share > self.max_code_share) and not self.request.found(
                text.request_text):
            where = "starts with code" if text.starts_with_code else f"{text.code_share:.0%} code"
            return f"a solution, not a request ({where}, no request sentence)"
        return None


# --- too_few_words


@dataclass(frozen=True)
class TooFewWords:
    min_words: int = 6
    name: str = "too_few_words"

    def check(self, text: Text) -> str | None:
        n = len(text.words)
        return f"{n} words (< {self.min_words})" if n < self.min_words else None


# --- no_task

# Task verbs that count anywhere (base form, -s, -ing): "write ...", "a function that returns ...".
REQUEST_VERBS = (
    "write", "implement", "create", "build", "develop", "design", "fix", "debug", "solve", "explain", "describe",
    "refactor", "optimize", "optimise", "improve", "convert", "translate", "rewrite", "generate", "find", "return",
    "compute", "calculate", "check", "determine", "sort", "reverse", "merge", "parse", "validate", "verify", "print",
    "compare", "remove", "delete", "insert", "update", "replace", "extract", "filter", "split", "simulate", "define",
    "modify", "complete", "suggest", "analyze", "analyse", "identify", "search", "detect", "transform", "encode",
    "decode", "construct", "predict", "classify", "plot", "draw", "visualize", "visualise", "fetch", "accept",
    "produce", "evaluate", "estimate", "measure", "flatten", "rotate", "swap", "multiply", "divide", "subtract",
    "increment", "normalize", "normalise", "resize", "crop", "scrape", "download", "upload", "connect", "select",
    "schedule", "automate", "deploy", "configure", "install", "initialize", "initialise", "iterate", "traverse",
    "recurse", "compress", "decompress", "encrypt", "decrypt", "tokenize", "tokenise", "rank", "recommend",
    "summarize", "summarise", "enumerate", "locate", "allocate", "partition", "shuffle", "approximate", "minimize",
    "minimise", "maximize", "maximise", "illustrate", "demonstrate", "outline", "discuss", "prove", "derive",
    "rename", "extend", "mock", "execute", "concatenate", "interleave", "append", "count", "handle", "assign",
    "combine", "inherit", "override", "overload", "serialize", "deserialize", "authenticate",
    "provide", "use", "get", "take", "make", "give", "help", "keep", "allow", "ensure", "add", "apply", "perform",
    "receive", "choose", "pick", "tell", "display", "output", "sum", "store", "contain", "represent", "consist",
)
# Of those, the ones too common in narrative for their -ing form to be a cue ("not providing food").
_NO_ING = frozenset({"provide", "use", "get", "take", "make", "give", "help", "keep", "allow", "ensure", "add",
                     "apply", "perform", "receive", "choose", "pick", "tell", "display", "output", "contain",
                     "represent", "consist", "store"})
# Verbs that are as often nouns ("the test set"), and question words: cues only where a sentence or clause
# starts ("List the files.", "How to ...") or after "to" or a modal ("... to read", "should run").
INITIAL_WORDS = (
    "code", "program", "list", "show", "test", "set", "run", "read", "process", "map", "group", "match", "plan",
    "sample", "format", "load", "save", "send", "train", "loop", "hash", "sign", "review", "comment", "document",
    "profile", "answer", "round", "scale", "shift", "clean", "query", "support", "model", "join", "wrap", "port",
    "benchmark", "need", "want", "like", "try", "let", "consider", "imagine", "assume", "suppose", "given",
)
QUESTION_WORDS = ("how", "what", "why", "which", "when", "where", "who", "whom", "whose", "whether")
_IRREGULAR = ("given",)
# Phrases that make a request anywhere.
REQUEST_PHRASES = (
    "how to", "how do", "how can", "how does", "how would", "how should", "is there", "are there", "is it possible",
    "can you", "could you", "would you", "will you", "can i", "could i", "should i", "do i", "i need", "i want",
    "i'd like", "i would like", "i wish", "help me", "please", "let's", "let me know", "your task", "your goal",
    "the task", "task:", "problem:", "should", "must", "expected", "needs to", "need to", "has to", "have to",
    "example:", "examples:", "input:", "output:", "constraints", "e.g.", "such that", "find out", "given",
)
_SENTENCE_START = r"(?:^|[.!?:;]\s+|\n\s*)(?:(?:\d+[.)]|[-*•]|\(\w\))\s+)?"
_INITIAL_AT = rf"(?:{_SENTENCE_START}|\b(?:to|and|then|or|please|can|could|should|must|will|would)\s+)"


def _forms(verb: str, ing: bool = True) -> set[str]:
    v = verb.lower()
    out = {v, v + "s", v + "es"}
    if len(v) > 2 and v.endswith("y") and v[-2] not in "aeiou":
        out.add(v[:-1] + "ies")
    if ing:
        out |= {v + "ing", v[:-1] + "ing"} if v.endswith("e") else {v + "ing", v + v[-1] + "ing"}
    return out


@dataclass(frozen=True)
class Request:
    """The request cues: a question mark, task verbs, request phrases, and verbs or question words where a
    sentence starts. ``extra_words`` (``filters.no_task.extra_request_words``) count anywhere."""

    extra_words: tuple[str, ...] = ()

    @cached_property
    def _anywhere(self) -> re.Pattern:
        forms = {f for v in REQUEST_VERBS for f in _forms(v, v not in _NO_ING)} | set(_IRREGULAR)
        forms |= {p.lower() for p in REQUEST_PHRASES}
        forms |= {f for w in self.extra_words for f in (_forms(w) if w.isalpha() else {w.lower()})}
        return re.compile(rf"(?<![\w-])(?:{_alternation(forms)})(?![\w-])".replace(r"\ ", r"\s+"), re.IGNORECASE)

    @cached_property
    def _initial(self) -> re.Pattern:
        forms = {v.lower() for v in (*REQUEST_VERBS, *INITIAL_WORDS)}
        return re.compile(rf"{_INITIAL_AT}(?:{_alternation(forms)})(?![\w-])|"
                          rf"{_SENTENCE_START}(?:{_alternation(QUESTION_WORDS)})(?![\w-])", re.IGNORECASE)

    def found(self, text: str) -> bool:
        """A question mark or any request cue."""
        return "?" in text or bool(self._anywhere.search(text) or self._initial.search(text))

    def imperative(self, text: str) -> bool:
        """A question mark or a sentence that starts with a request verb or a question word."""
        return "?" in text or bool(self._initial.search(text))


@dataclass(frozen=True)
class NoTask:
    request: Request = field(default_factory=lambda: Request())
    name: str = "no_task"

    def check(self, text: Text) -> str | None:
        if self.request.found(text.request_text):
            return None
        return "no question and no request"


# ----------------------------------------------------------------------------------------- the filters


RULE_ORDER = ("markup_junk", "language", "self_answer", "too_few_words", "no_task")


@dataclass(frozen=True)
class Hit:
    rule: str
    detail: str

    @property
    def reason(self) -> str:
        return REASON_PREFIX + self.rule


@dataclass(frozen=True)
class InstructionFilters:
    """The configured rules, in :data:`RULE_ORDER`."""

    rules: tuple[Rule, ...]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def first(self, raw: str) -> Hit | None:
        """The first rule ``raw`` fails, with why; None when it passes them all."""
        text = Text(raw)
        for rule in self.rules:
            if (detail := rule.check(text)) is not None:
                return Hit(rule.name, detail)
        return None

    def check(self, raw: str) -> str | None:
        """The drop reason (``filter:<rule>``) of the first rule ``raw`` fails, or None."""
        hit = self.first(raw)
        return hit.reason if hit else None

    def all_hits(self, raw: str) -> list[Hit]:
        """Every rule ``raw`` fails (for inspection; the drop reason is the first)."""
        text = Text(raw)
        return [Hit(r.name, d) for r in self.rules if (d := r.check(text)) is not None]


def build_filters(settings: FiltersSettings, programming_language: str | None) -> InstructionFilters:
    """The enabled rules of ``settings`` (``filters:``); ``programming_language`` is ``mining.language``."""
    if not settings.enabled:
        return InstructionFilters(())
    request = Request(tuple(settings.no_task.extra_request_words))
    lang = settings.language
    made: dict[str, Rule] = {}
    if settings.markup_junk.enabled:
        m = settings.markup_junk
        made["markup_junk"] = MarkupJunk(m.min_letter_share, m.max_tag_share, m.max_char_run, m.max_word_repeats,
                                         m.max_sentence_repeats, m.template_tokens)
    if lang.enabled and (lang.natural or lang.programming):
        made["language"] = Language(lang.natural, lang.min_script_share, lang.stopwords,
                                    programming_language if lang.programming else None,
                                    tuple(lang.allowed_programming))
    if settings.self_answer.enabled:
        made["self_answer"] = SelfAnswer(settings.self_answer.max_code_share, request)
    if settings.too_few_words.enabled:
        made["too_few_words"] = TooFewWords(settings.too_few_words.min_words)
    if settings.no_task.enabled:
        made["no_task"] = NoTask(request)
    return InstructionFilters(tuple(made[n] for n in RULE_ORDER if n in made))
