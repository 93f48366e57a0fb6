"""The VS Code extension in editors/vscode: its manifest agrees with its files and with nndsl
(grammar, language, snippets, settings the server reads, the layer names the grammar knows),
every snippet expands to a spec that checks clean, and, where node and the extension's packages
are installed (``npm ci --prefix editors/vscode``), its grammar tests, its tokenisation of every
spec, its client's type check and the ``.vsix`` build."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

import nndsl.layers
import nndsl.operators
import nndsl.train_catalogue as catalogue
from nndsl.api import check_source

EXTENSION = ROOT / "editors" / "vscode"
MANIFEST = json.loads((EXTENSION / "package.json").read_text())
CONTRIBUTES = MANIFEST["contributes"]
GRAMMAR_PATH = EXTENSION / "syntaxes" / "nndsl.tmLanguage.json"
GRAMMAR = json.loads(GRAMMAR_PATH.read_text())
SNIPPETS = json.loads((EXTENSION / "snippets" / "nndsl.json").read_text())


def node_tools() -> tuple[str, Path]:
    """node and the extension's installed packages, or a skip saying how to get them."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the VS Code extension's grammar tests and build are not run")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 20:
        pytest.skip(f"node {version} is older than @vscode/vsce needs (20): the VS Code extension is not tested")
    modules = EXTENSION / "node_modules"
    if not (modules / "vscode-tmgrammar-test").is_dir() or not (modules / "@vscode" / "vsce").is_dir():
        pytest.skip("the extension's packages are not installed: run `npm ci --prefix editors/vscode`")
    return node, modules / ".bin"


#: the build script's esbuild arguments (package.json "build")
BUILD_ARGS = MANIFEST["scripts"]["build"].split()[1:]


def run(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=EXTENSION, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


# ---------------------------------------------------------------- the manifest and its files


def test_the_manifest_names_files_that_exist_and_agree():
    (language,) = CONTRIBUTES["languages"]
    assert language["id"] == "nndsl" and language["extensions"] == [".nn"]
    assert (EXTENSION / language["configuration"]).is_file()
    grammars = {g["scopeName"]: g for g in CONTRIBUTES["grammars"]}
    main = grammars["source.nndsl"]
    assert main["language"] == language["id"]
    assert (EXTENSION / main["path"]).resolve() == GRAMMAR_PATH
    assert GRAMMAR["scopeName"] == "source.nndsl" and GRAMMAR["fileTypes"] == ["nn"]
    for grammar in grammars.values():
        text = json.loads((EXTENSION / grammar["path"]).read_text())
        assert text["scopeName"] == grammar["scopeName"]
    markdown = grammars["markdown.nndsl.codeblock"]
    assert markdown["embeddedLanguages"] == {"meta.embedded.block.nndsl": language["id"]}
    (snippets,) = CONTRIBUTES["snippets"]
    assert snippets["language"] == language["id"] and (EXTENSION / snippets["path"]).is_file()
    assert MANIFEST["main"] == "./dist/extension.js"
    assert MANIFEST["engines"]["vscode"] == "^" + MANIFEST["devDependencies"]["@types/vscode"]


def test_every_dependency_is_pinned_and_locked():
    lock = json.loads((EXTENSION / "package-lock.json").read_text())["packages"]
    for deps in (MANIFEST["dependencies"], MANIFEST["devDependencies"]):
        for name, version in deps.items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is a range, not a version"
            assert lock[f"node_modules/{name}"]["version"] == version, name
    assert lock[""]["dependencies"] == MANIFEST["dependencies"]
    assert lock[""]["devDependencies"] == MANIFEST["devDependencies"]


def test_the_settings_are_those_the_client_and_the_server_read():
    settings = CONTRIBUTES["configuration"]["properties"]
    assert settings["nndsl.server.path"]["default"] == "nndsl"
    assert settings["nndsl.server.args"]["default"] == ["lsp"]
    assert settings["nndsl.inlayHints.enabled"]["default"] is True
    assert set(settings["nndsl.trace.server"]["enum"]) == {"off", "messages", "verbose"}
    client = (EXTENSION / "src" / "extension.ts").read_text()
    for key in settings:
        if key != "nndsl.trace.server":  # read by vscode-languageclient itself, for the client id "nndsl"
            assert f'"{key.removeprefix("nndsl.")}"' in client, key
    assert 'new LanguageClient("nndsl"' in client
    for command in CONTRIBUTES["commands"]:
        assert f'registerCommand("{command["command"]}"' in client
    assert "pip install 'nndsl[lsp]'" in client


def test_the_language_configuration_matches_the_language():
    config = json.loads((EXTENSION / "language-configuration.json").read_text())
    assert config["comments"] == {"lineComment": "#"}
    assert sorted(map(tuple, config["brackets"])) == [("(", ")"), ("[", "]"), ("{", "}")]
    assert {p["open"] for p in config["autoClosingPairs"]} == {"(", "[", "{", '"', "'"}
    increase = re.compile(config["indentationRules"]["increaseIndentPattern"])
    decrease = re.compile(config["indentationRules"]["decreaseIndentPattern"])
    assert increase.match("model M(x: [N, 4]) {") and increase.match("    x -> Linear(  # the input")
    assert not increase.match("    x -> Linear(4, 2)")
    assert decrease.match("    }") and not decrease.match("    x -> ReLU")
    word = re.compile(config["wordPattern"])
    assert [m.group() for m in word.finditer("x -> Linear(1_000, 0.5)")] == ["x", "Linear", "1_000", "0.5"]


def grammar_words(scope: str) -> set[str]:
    """The names the grammar's call rule for ``scope`` lists."""
    for rule in GRAMMAR["repository"]["calls"]["patterns"]:
        if rule.get("beginCaptures", {}).get("1", {}).get("name") == scope:
            listed = re.fullmatch(r"\(\\b\(\?:([\w|]+)\)\\b\)\(\\\(\)", rule["begin"])
            assert listed, rule["begin"]
            return set(listed.group(1).split("|"))
    raise AssertionError(f"no call rule for {scope}")


def test_the_grammar_knows_every_layer_function_and_training_name():
    """The highlighted names are nndsl's own: a layer added to nndsl must be added here."""
    assert grammar_words("support.class.layer.nndsl") == set(nndsl.layers.REGISTRY) | {"Residual", "Parameter"}
    functions = set(nndsl.operators.REGISTRY) - {"getitem"} | {"range", "len", "min", "max"}
    assert grammar_words("support.function.builtin.nndsl") == functions
    trains = set(catalogue.LOSS_TASKS) | set(catalogue.TRAIN_OPTIMIZERS) | set(catalogue.TRAIN_SCHEDULERS)
    assert grammar_words("support.class.train.nndsl") == trains
    assert grammar_words("support.function.data.nndsl") == set(catalogue.DATA_LOADERS)


def test_the_grammar_keywords_are_the_parsers():
    keywords = set(re.findall(r'"([a-z]+)"', (ROOT / "grammars" / "nndsl.lark").read_text()))
    in_grammar = set()
    for rule in GRAMMAR["repository"]["keyword"]["patterns"]:
        in_grammar |= set(re.findall(r"[a-z]+", rule["match"].replace("\\b", " ").replace("?:", " ")))
    assert keywords <= in_grammar, keywords - in_grammar


# ---------------------------------------------------------------- snippets


def expand(body: str) -> str:
    """A VS Code snippet's text with every placeholder at its default: ``${1:x}`` is x, a mirror
    ``$1`` the default of its placeholder, ``${1|a,b|}`` its first choice, ``$0`` nothing."""
    defaults: dict[str, str] = {}

    def parse(text: str, at: int, stop: str | None) -> tuple[list, int]:
        parts: list = []
        while at < len(text):
            char = text[at]
            if char == "\\" and at + 1 < len(text) and text[at + 1] in "$}\\":
                parts.append(text[at + 1])
                at += 2
            elif stop is not None and char == stop:
                return parts, at + 1
            elif char == "$" and (m := re.match(r"\$(\d+)|\$\{(\d+)\}", text[at:])):
                parts.append(("mirror", m.group(1) or m.group(2)))
                at += m.end()
            elif char == "$" and (m := re.match(r"\$\{(\d+)\|([^|]*)\|\}", text[at:])):
                defaults.setdefault(m.group(1), m.group(2).split(",")[0])
                parts.append(("mirror", m.group(1)))
                at += m.end()
            elif char == "$" and (m := re.match(r"\$\{(\d+):", text[at:])):
                inner, at = parse(text, at + m.end(), "}")
                parts.append(("placeholder", m.group(1), inner))
            else:
                parts.append(char)
                at += 1
        assert stop is None, f"unclosed placeholder in {body!r}"
        return parts, at

    def render(parts: list) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            elif part[0] == "placeholder":
                text = render(part[2])
                defaults.setdefault(part[1], text)
                out.append(text)
            else:
                out.append(defaults.get(part[1], "") if part[1] != "0" else "")
        return "".join(out)

    tree, _ = parse(body, 0, None)
    render(tree)  # a mirror may come before its placeholder: the first pass learns every default
    return render(tree)


def test_the_snippet_expander_follows_vscodes_rules():
    assert expand("Linear(${1:128}, ${2:10}) -> $0") == "Linear(128, 10) -> "
    assert expand("${1:a ${2:b}} $2 ${3|x,y|} $3 \\$1") == "a b b x x $1"
    assert expand("$1 ${1:late}") == "late late"


#: where each snippet is written to be checked: text before it, after it, and a bare chain's input
CONTEXTS: dict[str, tuple[str, str, str | None]] = {
    "model": ("", "", None),
    "block": ("", "\nmodel M(x: [N, 3, 8, 8]) { x -> ConvBN(16) }\n", None),
    "residual": ("", "", "[N, 64, 8, 8]"),
    "train": ("model Net(x: [N, 1, 8, 8]) { Flatten -> Linear(64, 10) }\n", "", None),
    "let": ("", "\nmodel M(x: [N, 4]) { x -> Linear(4, hidden) }\n", None),
    "for": ("model M(x: [N, 64]) {\n    x -> ", "\n}\n", None),
    "Conv2d": ("", "", "[N, 3, 32, 32]"),
    "conv-bn-relu": ("", "", "[N, 3, 32, 32]"),
    "Linear": ("", "", "[N, 128]"),
    "mlp": ("", "", "[N, 1, 28, 28]"),
    "BatchNorm2d": ("", "", "[N, 16, 8, 8]"),
    "MaxPool2d": ("", "", "[N, 16, 8, 8]"),
    "LayerNorm": ("", "", "[N, 10, 512]"),
    "Dropout": ("", "", "[N, 10]"),
    "Embedding": ("", "", "long[N, T]"),
    "LSTM": ("", "", "[N, T, 32]"),
    "TransformerEncoderLayer": ("", "", "[N, T, 512]"),
    "ignore": ("model M(x: [N, 4]) {\n    unused = x -> ReLU  ", "\n    return x\n}\n", None),
}


def test_every_snippet_has_a_context_to_check_it_in():
    assert set(SNIPPETS) == set(CONTEXTS)


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_each_snippet_at_its_defaults_checks_clean(name):
    snippet = SNIPPETS[name]
    assert snippet["prefix"] and snippet["description"]
    body = "\n".join(snippet["body"]).replace("\t", "    ")
    before, after, input_shape = CONTEXTS[name]
    text = before + expand(body) + after
    if name == "ignore":  # the comment hides the warning its line raises
        text = text.replace("[W301]", "[W305]")
    result = check_source(text, f"<{name} snippet>", input=input_shape)
    assert result.diagnostics == [], f"{text}\n{[d.code + ' ' + d.message for d in result.diagnostics]}"


def test_the_ignore_snippet_placeholder_names_a_warning_code():
    assert expand(SNIPPETS["ignore"]["body"][0]) == "# nndsl: ignore[W301]"


# ---------------------------------------------------------------- node: grammar tests, specs, build


def test_the_grammar_assertions_pass():
    _, bin_dir = node_tools()
    tests = sorted((EXTENSION / "tests").glob("*.test.nn"))
    assert tests
    result = run(bin_dir / "vscode-tmgrammar-test", "-g", GRAMMAR_PATH, *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_scope_assertion_fails(tmp_path):
    _, bin_dir = node_tools()
    wrong = tmp_path / "wrong.test.nn"
    wrong.write_text(
        '# SYNTAX TEST "source.nndsl" "a layer is not a keyword"\nx -> ReLU\n#    ^^^^ keyword.control.nndsl\n'
    )
    result = run(bin_dir / "vscode-tmgrammar-test", "-g", GRAMMAR_PATH, wrong)
    assert result.returncode != 0 and "keyword.control.nndsl" in result.stdout + result.stderr


def test_every_spec_is_tokenised_with_meaningful_scopes():
    node, _ = node_tools()
    result = run(node, "tests/specs.js", SPECS)
    count = len(list(SPECS.rglob("*.nn")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} specs tokenised, 0 problems" in result.stdout
    assert (SPECS / "bad").is_dir() and list((SPECS / "bad").glob("*.nn"))


def test_the_spec_tokenisation_check_reports_invalid_characters(tmp_path):
    node, _ = node_tools()
    spec = tmp_path / "dollar.nn"
    spec.write_text("model M(x: [N, 4]) {\n    x -> Linear(4, 2) $\n}\n")
    result = run(node, "tests/specs.js", spec)
    assert result.returncode == 1
    assert f"{spec}:2:23: " in result.stderr and "is marked invalid" in result.stderr


def test_nn_blocks_in_markdown_are_highlighted_through_the_injection(tmp_path):
    node, _ = node_tools()
    result = run(node, "tests/markdown.js")
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = re.search(r"(\d+) nn blocks, 0 problems", result.stdout)
    assert blocks and int(blocks.group(1)) > 50, result.stdout
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n```nn-error E002\nmodel M(x: [N, 4]) { x -> $ }\n```\n\n```nn\nx -> $\n```\nmodel text\n"
    )
    result = run(node, "tests/markdown.js", page)
    assert result.returncode == 1 and "2 nn blocks, 1 problems" in result.stdout
    assert f"{page}:8: " in result.stderr and "is marked invalid" in result.stderr


def test_the_client_says_how_to_install_a_missing_server():
    """The bundled client against a stand-in for VS Code's API (VS Code itself cannot run here)."""
    node, bin_dir = node_tools()
    build = run(bin_dir / "esbuild", *BUILD_ARGS)
    assert build.returncode == 0, build.stderr
    result = run(node, "tests/client.js")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "client: 14 checks passed" in result.stdout


def test_the_client_type_checks():
    node_tools()
    result = run(EXTENSION / "node_modules" / ".bin" / "tsc", "--noEmit", "-p", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_vsix_builds_with_the_grammar_snippets_and_the_bundled_client(tmp_path):
    _, bin_dir = node_tools()
    vsix = tmp_path / "nndsl.vsix"
    result = run(
        bin_dir / "vsce", "package", "--no-dependencies", "--allow-missing-repository", "--skip-license", "--out", vsix
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        packaged = json.loads(archive.read("extension/package.json"))
        client = archive.read("extension/dist/extension.js").decode()
    assert {
        "extension.vsixmanifest",
        "extension/package.json",
        "extension/language-configuration.json",
        "extension/syntaxes/nndsl.tmLanguage.json",
        "extension/syntaxes/nndsl.markdown.tmLanguage.json",
        "extension/snippets/nndsl.json",
        "extension/dist/extension.js",
    } <= names
    assert not any(name.startswith(("extension/node_modules/", "extension/src/", "extension/tests/")) for name in names)
    assert packaged["contributes"] == CONTRIBUTES
    assert "vscode-languageclient" not in packaged.get("dependencies", {}) or "LanguageClient" in client
    assert 'require("vscode")' in client and "nndsl.restartServer" in client
