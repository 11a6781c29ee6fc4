# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write docs/modules/ (one Markdown page per module, and an index) from the modules' own docs.

    python scripts/gen_module_docs.py [--output DIR] [--collection-root DIR]

The module documentation is read through ``ansible-doc --json``, so doc fragments are merged
exactly as Ansible merges them, and its markup (C(), O(), M(), ...) is parsed with
antsibull-docs-parser, the parser antsibull-docs uses. The pages are Markdown rather than
antsibull-docs' own output because antsibull-docs writes its option tables as raw HTML blocks
inside reStructuredText, which the repository's web view does not render.

The output depends only on the module files and on the pinned versions of ansible-core and
antsibull-docs-parser, so ``scripts/test.sh docs`` can regenerate into a temporary directory
and require it to equal docs/modules/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import yaml
from antsibull_docs_parser import dom
from antsibull_docs_parser.format import Formatter, LinkProvider, format_paragraphs
from antsibull_docs_parser.parser import Context, parse

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = Path("docs") / "modules"
INDEX_PAGE = "README.md"
REGENERATE = "python scripts/gen_module_docs.py"
BUILTIN_DOCS = "https://docs.ansible.com/ansible/latest/collections/ansible/builtin/{}_module.html"

# Characters that start Markdown syntax inside running text. An underscore only matters at a
# word boundary, so option names such as image_timeout stay readable in the page source.
TEXT_SPECIALS = re.compile(r"([\\`*\[\]<|])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


class DocsError(Exception):
    """The documentation cannot be read or rendered; the message says which module and why."""


# -- markup -------------------------------------------------------------------------------------


def escape_text(text: str, in_table: bool) -> str:
    escaped = TEXT_SPECIALS.sub(lambda match: "\\" + match.group(0), text)
    return escaped if in_table else escaped.replace("\\|", "|")


def code_span(text: str, in_table: bool) -> str:
    fence = "``" if "`" in text else "`"
    padding = " " if "`" in text else ""
    body = text.replace("|", "\\|") if in_table else text
    return f"{fence}{padding}{body}{padding}{fence}"


class MarkdownFormatter(Formatter):
    """Ansible markup parts as GitHub-flavoured Markdown; table cells need ``|`` escaped."""

    def __init__(self, in_table: bool) -> None:
        self.in_table = in_table

    def format_error(self, part: dom.ErrorPart) -> str:
        raise DocsError(f"invalid markup: {part.message}")

    def format_bold(self, part: dom.BoldPart) -> str:
        return f"**{escape_text(part.text, self.in_table)}**"

    def format_code(self, part: dom.CodePart) -> str:
        return code_span(part.text, self.in_table)

    def format_horizontal_line(self, part: dom.HorizontalLinePart) -> str:
        return "<hr>"

    def format_italic(self, part: dom.ItalicPart) -> str:
        return f"*{escape_text(part.text, self.in_table)}*"

    def format_link(self, part: dom.LinkPart) -> str:
        return f"[{escape_text(part.text, self.in_table)}]({part.url})"

    def format_module(self, part: dom.ModulePart, url: Optional[str]) -> str:
        return link(code_span(part.fqcn, self.in_table), url)

    def format_rst_ref(self, part: dom.RSTRefPart) -> str:
        return escape_text(part.text, self.in_table)

    def format_url(self, part: dom.URLPart) -> str:
        return f"<{part.url}>"

    def format_text(self, part: dom.TextPart) -> str:
        return escape_text(part.text, self.in_table)

    def format_env_variable(self, part: dom.EnvVariablePart) -> str:
        return code_span(part.name, self.in_table)

    def format_option_name(self, part: dom.OptionNamePart, url: Optional[str]) -> str:
        return link(code_span(option_text(part), self.in_table), url)

    def format_option_value(self, part: dom.OptionValuePart) -> str:
        return code_span(part.value, self.in_table)

    def format_plugin(self, part: dom.PluginPart, url: Optional[str]) -> str:
        return link(code_span(part.plugin.fqcn, self.in_table), url)

    def format_return_value(self, part: dom.ReturnValuePart, url: Optional[str]) -> str:
        return link(code_span(option_text(part), self.in_table), url)


def option_text(part: Any) -> str:
    return part.name if part.value is None else f"{part.name}={part.value}"


def link(text: str, url: Optional[str]) -> str:
    return f"[{text}]({url})" if url else text


class CollectionLinks(LinkProvider):
    """Links between the generated pages, to role READMEs, and to ansible.builtin modules."""

    def __init__(self, collection: str) -> None:
        self.collection = collection

    def plugin_link(self, plugin: dom.PluginIdentifier) -> Optional[str]:
        namespace_name, unused_dot, name = plugin.fqcn.rpartition(".")
        if namespace_name == self.collection:
            if plugin.type == "module":
                return f"{name}.md"
            if plugin.type == "role":
                return f"../../roles/{name}/README.md"
            return None
        if namespace_name == "ansible.builtin" and plugin.type == "module":
            return BUILTIN_DOCS.format(name)
        return None

    def plugin_option_like_link(self, plugin: dom.PluginIdentifier, entrypoint: Optional[str],
                                what: str, name: List[str], current_plugin: bool,
                                ) -> Optional[str]:
        kind = "parameter" if what == "option" else "return"
        anchor = f"#{kind}-{'/'.join(name)}"
        if current_plugin:
            return anchor
        page = self.plugin_link(plugin)
        return page + anchor if page and plugin.type == "module" else None


class Renderer:
    """Turns Ansible markup of one module into Markdown, for running text or a table cell."""

    def __init__(self, collection: str, fqcn: str) -> None:
        self.context = Context(current_plugin=dom.PluginIdentifier(fqcn=fqcn, type="module"))
        self.links = CollectionLinks(collection)
        self.fqcn = fqcn

    def paragraphs(self, text: Any, in_table: bool) -> List[str]:
        items = text if isinstance(text, list) else [text]
        try:
            parsed = parse([str(item) for item in items], self.context, errors="exception")
        except ValueError as exc:
            raise DocsError(f"{self.fqcn}: invalid markup: {exc}") from exc
        formatter = MarkdownFormatter(in_table)
        return [format_paragraphs([paragraph], formatter, self.links,
                                  current_plugin=self.context.current_plugin).strip()
                for paragraph in parsed]

    def cell(self, text: Any) -> str:
        if text is None or text == []:
            return ""
        return "<br>".join(self.paragraphs(text, in_table=True))

    def bullets(self, text: Any) -> List[str]:
        return [f"- {paragraph}" for paragraph in self.paragraphs(text, in_table=False)]


# -- values -------------------------------------------------------------------------------------


def plain_value(value: Any) -> str:
    """A default, choice or sample as YAML would show it, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def value_cell(value: Any) -> str:
    return "" if value is None else code_span(plain_value(value), in_table=True)


def type_cell(spec: Dict[str, Any]) -> str:
    kind = spec.get("type", "str")
    if spec.get("elements"):
        kind = f"{kind} of {spec['elements']}"
    return f"{kind}, **required**" if spec.get("required") else kind


def name_cell(kind: str, path: List[str], spec: Dict[str, Any]) -> str:
    anchor = f'<a id="{kind}-{"/".join(path)}"></a>'
    names = code_span(" / ".join(path) if len(path) > 1 else path[0], in_table=True)
    aliases = spec.get("aliases") or []
    if aliases:
        names += "<br>aliases: " + ", ".join(code_span(alias, True) for alias in aliases)
    return anchor + names


def walk(specs: Dict[str, Any], children: str, path: Tuple[str, ...] = ()
         ) -> Iterator[Tuple[List[str], Dict[str, Any]]]:
    """Every entry of an option or return value tree, parents before children, by name."""
    for name in sorted(specs):
        spec = specs[name] or {}
        yield list(path + (name,)), spec
        yield from walk(spec.get(children) or {}, children, path + (name,))


# -- page sections ------------------------------------------------------------------------------


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def section(title: str, body: List[str]) -> List[str]:
    return ["", f"## {title}", ""] + body if body else []


def parameters(doc: Dict[str, Any], render: Renderer) -> List[str]:
    rows = []
    for path, spec in walk(doc.get("options") or {}, "suboptions"):
        comments = render.cell(spec.get("description"))
        if spec.get("choices"):
            choices = ", ".join(value_cell(choice) for choice in spec["choices"])
            comments += f"<br>Choices: {choices}"
        rows.append([name_cell("parameter", path, spec), type_cell(spec),
                     value_cell(spec.get("default")), comments])
    return table(["Parameter", "Type", "Default", "Comments"], rows) if rows else []


def attributes(doc: Dict[str, Any], render: Renderer) -> List[str]:
    rows = []
    for name in sorted(doc.get("attributes") or {}):
        spec = doc["attributes"][name]
        comments = render.cell(spec.get("description"))
        if spec.get("details"):
            comments += "<br>" + render.cell(spec["details"])
        if spec.get("membership"):
            comments += "<br>Action group: " + ", ".join(
                code_span(group, True) for group in spec["membership"])
        rows.append([code_span(name, True), spec.get("support", ""), comments])
    return table(["Attribute", "Support", "Description"], rows) if rows else []


def return_values(returns: Dict[str, Any], render: Renderer) -> List[str]:
    rows = []
    for path, spec in walk(returns or {}, "contains"):
        comments = render.cell(spec.get("description"))
        if "sample" in spec:
            comments += f"<br>Sample: {value_cell(spec['sample'])}"
        rows.append([name_cell("return", path, spec), type_cell(spec),
                     render.cell(spec.get("returned")), comments])
    return table(["Key", "Type", "Returned", "Description"], rows) if rows else []


def see_also(doc: Dict[str, Any], render: Renderer) -> List[str]:
    lines = []
    for item in doc.get("seealso") or []:
        if "module" in item:
            target = render.links.plugin_link(dom.PluginIdentifier(item["module"], "module"))
            lines.append(f"- {link(code_span(item['module'], False), target)}")
        elif "link" in item:
            lines.append(f"- [{escape_text(item['name'], False)}]({item['link']})")
        if item.get("description"):
            lines[-1] += ": " + " ".join(render.paragraphs(item["description"], False))
    return lines


def module_page(fqcn: str, data: Dict[str, Any], collection: str) -> str:
    doc = data["doc"]
    render = Renderer(collection, fqcn)
    lines = [f"# {fqcn}", "", render.cell(doc.get("short_description")), "",
             f"<!-- Generated from the module's documentation by {REGENERATE}; do not edit. -->"]
    lines += section("Synopsis", render.bullets(doc.get("description") or []))
    lines += section("Requirements", render.bullets(doc.get("requirements") or []))
    lines += section("Parameters", parameters(doc, render))
    lines += section("Attributes", attributes(doc, render))
    lines += section("Notes", render.bullets(doc.get("notes") or []))
    lines += section("See also", see_also(doc, render))
    examples = (data.get("examples") or "").strip("\n")
    lines += section("Examples", ["```yaml", examples, "```"] if examples else [])
    lines += section("Return values", return_values(data.get("return") or {}, render))
    lines += section("Authors", [f"- {author}" for author in doc.get("author") or []])
    return "\n".join(lines) + "\n"


def index_page(pages: Dict[str, Dict[str, Any]], collection: str) -> str:
    rows = []
    for fqcn in sorted(pages):
        render = Renderer(collection, fqcn)
        name = fqcn.rpartition(".")[2]
        rows.append([f"[{code_span(fqcn, True)}]({name}.md)",
                     render.cell(pages[fqcn]["doc"].get("short_description"))])
    lines = [f"# Modules of {collection}", "",
             f"<!-- Generated by {REGENERATE}; do not edit. -->", ""]
    lines += table(["Module", "Purpose"], rows)
    return "\n".join(lines) + "\n"


# -- collection ---------------------------------------------------------------------------------


def collection_name(root: Path) -> str:
    with open(root / "galaxy.yml", encoding="utf-8") as handle:
        meta = yaml.safe_load(handle)
    return f"{meta['namespace']}.{meta['name']}"


def module_names(root: Path) -> List[str]:
    return sorted(path.stem for path in (root / "plugins" / "modules").glob("*.py")
                  if path.stem != "__init__")


def ansible_doc(root: Path, collection: str, fqcns: List[str]) -> Dict[str, Any]:
    """``ansible-doc --json`` for the modules, with only this collection on the search path."""
    namespace, name = collection.split(".")
    with tempfile.TemporaryDirectory(prefix="hangar-docs-") as scratch:
        home = Path(scratch) / "ansible_collections" / namespace
        home.mkdir(parents=True)
        (home / name).symlink_to(root.resolve(), target_is_directory=True)
        # An empty ansible.cfg of our own keeps the user's settings out of the output.
        config = Path(scratch) / "ansible.cfg"
        config.write_text("", encoding="utf-8")
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=scratch, ANSIBLE_CONFIG=str(config),
                   ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1")
        command = [sys.executable, "-m", "ansible", "doc", "-t", "module", "--json"] + fqcns
        done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True,
                              check=False)
    if done.returncode != 0:
        raise DocsError(f"ansible-doc failed (exit {done.returncode}): {done.stderr.strip()}")
    data = json.loads(done.stdout)
    missing = sorted(set(fqcns) - set(data))
    if missing:
        raise DocsError(f"ansible-doc returned no documentation for {', '.join(missing)}: "
                        f"{done.stderr.strip()}")
    return data


def write_pages(output: Path, pages: Dict[str, str]) -> None:
    """Write the pages and remove Markdown files of modules that no longer exist."""
    output.mkdir(parents=True, exist_ok=True)
    for stale in output.glob("*.md"):
        if stale.name not in pages:
            stale.unlink()
    for name, text in pages.items():
        (output / name).write_text(text, encoding="utf-8")


def generate(root: Path, output: Path) -> List[str]:
    collection = collection_name(root)
    fqcns = [f"{collection}.{name}" for name in module_names(root)]
    docs = ansible_doc(root, collection, fqcns)
    pages = {f"{fqcn.rpartition('.')[2]}.md": module_page(fqcn, docs[fqcn], collection)
             for fqcn in fqcns}
    pages[INDEX_PAGE] = index_page({fqcn: docs[fqcn] for fqcn in fqcns}, collection)
    write_pages(output, pages)
    return sorted(pages)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection-root", type=Path, default=REPOSITORY_ROOT,
                        help="the collection to document (default: this repository)")
    parser.add_argument("--output", type=Path,
                        help="where to write the pages (default: docs/modules of the collection)")
    args = parser.parse_args(argv)
    output = args.output or args.collection_root / DEFAULT_OUTPUT
    try:
        written = generate(args.collection_root, output)
    except (DocsError, OSError) as error:
        print(f"gen_module_docs: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} pages to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
