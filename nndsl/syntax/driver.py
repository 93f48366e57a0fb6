"""A faster loop for lark's LALR parse: the same terminals, tables and callbacks, less work per token.

lark's own loop builds a full ``Token`` (line and column included) for every token and calls a
callback for every reduction, including the chain of one-child reductions that climbs the
precedence levels of an expression (``atom -> postfix -> ... -> expr``), where the callback
returns its child unchanged. This loop matches the text with lark's own compiled terminal
regex and keyword callbacks, gives each token only what the AST builder reads (type, value,
start and end offsets), and does a one-child reduction by replacing the top state.

It only ever accepts: on any input lark would reject it returns ``None``, and the caller
parses with lark itself, which raises its usual exception. So errors, and what is said about
them, are lark's alone. With a lark whose internals differ, ``Driver.build`` returns ``None``.
"""

from __future__ import annotations

from lark import Lark, Token


class _Token(Token):
    """A lark Token with only ``type``, ``start_pos`` and ``end_pos`` set (str gives the text)."""

    __slots__ = ()


_new_token = str.__new__


class _Reduce:
    """What a reduction needs: how many values it takes, its callback and the rule's name;
    ``unit`` when it takes one value and gives it back unchanged."""

    __slots__ = ("size", "callback", "origin", "unit")

    def __init__(self, size: int, callback, origin: str, unit: bool) -> None:
        self.size = size
        self.callback = callback
        self.origin = origin
        self.unit = unit


class Driver:
    """Parses with the tables of one built lark parser (see the module docstring)."""

    def __init__(self, regex, ignore, keywords, actions, starts, ends) -> None:
        self._regex = regex
        self._ignore = ignore
        self._keywords = keywords  # terminal name -> the callback that may make it a keyword
        self._actions = actions  # state -> {symbol: int (shift/goto target) or _Reduce}
        self._starts = starts
        self._ends = ends
        self._units: dict = {}  # (state below, top state, lookahead) -> top state after one-child reductions

    def _climb(self, below, action: _Reduce, kind: str):
        """The top state after ``action`` and every one-child reduction that follows it on the
        lookahead ``kind``, with ``below`` under the top all along."""
        actions = self._actions
        while True:
            top = actions[below][action.origin]
            action = actions[top].get(kind)
            if action is None or action.__class__ is int or not action.unit:
                return top

    @classmethod
    def build(cls, parser: Lark) -> Driver | None:
        """A driver for ``parser`` (``lexer='basic'``, ``parser='lalr'``), or None if its
        internals are not those this loop knows."""
        try:
            from lark.lexer import UnlessCallback
            from lark.parse_tree_builder import ExpandSingleChild
            from lark.parsers.lalr_analysis import Shift

            frontend = parser.parser
            lexer = frontend.lexer
            scanner = lexer.scanner
            table = frontend.parser.parser.parse_table
            callbacks = frontend.parser.parser.callbacks
            if len(scanner._mres) != 1 or lexer.use_bytes:
                return None
            for callback in lexer.callback.values():
                if type(callback) is not UnlessCallback:
                    return None
            if any(isinstance(key, str) for key in callbacks):  # callbacks on terminals
                return None
            actions: dict = {}
            reductions: dict[int, _Reduce] = {}  # by id of the rule: a Rule hashes in Python
            for state, row in table.states.items():
                decoded = {}
                for symbol, (action, arg) in row.items():
                    if action is Shift:
                        if arg.__class__ is not int:
                            return None
                        decoded[symbol] = arg
                        continue
                    reduce = reductions.get(id(arg))
                    if reduce is None:
                        callback = callbacks[arg]
                        size = len(arg.expansion)
                        unit = size == 1 and type(callback) is ExpandSingleChild
                        reduce = reductions[id(arg)] = _Reduce(size, callback, arg.origin.name, unit)
                    decoded[symbol] = reduce
                actions[state] = decoded
            return cls(
                scanner._mres[0],
                frozenset(lexer.ignore_types),
                dict(lexer.callback),
                actions,
                dict(table.start_states),
                dict(table.end_states),
            )
        except (AttributeError, KeyError, TypeError, ValueError, ImportError):
            return None

    def scan(self, text: str) -> list[tuple[str, str, int]] | None:
        """Every token of ``text`` as (terminal, text, start offset), the ignored ones (blank
        space, comments) included, as lark's ``lex(text, dont_ignore=True)`` gives them; None
        when a character matches no terminal."""
        keywords = self._keywords
        kinds: dict[str, str] = {}
        out = []
        pos = 0
        for match in self._regex.finditer(text):
            if match.start() != pos:
                return None
            kind = match.lastgroup
            value = match.group()
            if kind in keywords:
                found = kinds.get(value)
                if found is None:
                    found = kinds[value] = keywords[kind].scanner.fullmatch(value) or kind
                kind = found
            out.append((kind, value, pos))
            pos = match.end()
        return out if pos == len(text) else None

    def parse(self, text: str, start: int, end: int, symbol: str):
        """The value of ``text[start:end]`` parsed from ``symbol`` (offsets into ``text``), or
        None when the text does not parse (lark then says why)."""
        actions = self._actions
        ignore = self._ignore
        keywords = self._keywords
        kinds: dict[str, str] = {}  # a word's terminal, as the keyword callbacks decide
        end_state = self._ends[symbol]
        states = [self._starts[symbol]]
        values: list = []
        push_state = states.append
        push_value = values.append
        units = self._units
        new = _new_token
        pos = start
        for match in self._regex.finditer(text, start, end):
            if match.start() != pos:
                return None  # a character no terminal matches
            kind = match.lastgroup
            pos = match.end()
            if kind in ignore:
                continue
            value = match.group()
            if kind in keywords:
                found = kinds.get(value)
                if found is None:
                    found = keywords[kind].scanner.fullmatch(value) or kind
                    kinds[value] = found
                kind = found
            token = new(_Token, value)
            token.type = kind
            token.start_pos = match.start()
            token.end_pos = pos
            while True:
                action = actions[states[-1]].get(kind)
                if action is None:
                    return None
                if action.__class__ is int:
                    push_state(action)
                    push_value(token)
                    break
                if action.unit:  # a chain of one-child reductions ends where it did last time
                    key = (states[-2], states[-1], kind)
                    top = units.get(key)
                    if top is None:
                        top = self._climb(states[-2], action, kind)
                        units[key] = top
                    states[-1] = top
                    continue
                size = action.size
                if size:
                    children = values[-size:]
                    del states[-size:]
                    del values[-size:]
                else:
                    children = []
                push_value(action.callback(children))
                push_state(actions[states[-1]][action.origin])
        if pos != end:
            return None
        while True:  # the end of the input: reduce until the start symbol is complete
            action = actions[states[-1]].get("$END")
            if action is None or action.__class__ is int:
                return None
            size = action.size
            if action.unit:
                del states[-1]
            elif size:
                children = values[-size:]
                del states[-size:]
                del values[-size:]
                push_value(action.callback(children))
            else:
                push_value(action.callback([]))
            push_state(actions[states[-1]][action.origin])
            if states[-1] == end_state:
                return values[-1]
