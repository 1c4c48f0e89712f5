"""Read a list of servers from an inventory someone already keeps.

Four formats: an Ansible inventory in INI or YAML (groups become tags), an
OpenSSH `ssh_config`, and CSV with the header `name,address,port,user,tags`.
Each parser yields `InventoryRow`s that remember the line they came from, so
the import preview can put every problem next to its line. `inventory_check`
then validates the rows with the same rules as the server form (name, address
guard, port, user, tags) and finds duplicates within the file and against the
team's existing servers. Nothing here writes: `services.servers_import` does.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipetower.core.errors import ServiceError

FORMATS: dict[str, str] = {
    "ansible_ini": "Ansible inventory (INI)",
    "ansible_yaml": "Ansible inventory (YAML)",
    "ssh_config": "OpenSSH ssh_config",
    "csv": "CSV (name,address,port,user,tags)",
}
MAX_INVENTORY_BYTES = 1_000_000
MAX_INVENTORY_SERVERS = 1000
# A host range such as web[01:50] expands to at most this many names.
MAX_RANGE = 1000
# YAML nodes walked at most (aliases can make a small file describe a huge tree).
MAX_YAML_NODES = 100_000

CSV_COLUMNS = ("name", "address", "port", "user", "tags")
_SKIPPED_GROUPS = {"all", "ungrouped"}


class InventoryError(ServiceError):
    """The whole file cannot be read (too large, not the format chosen, no header)."""

    code = "invalid_inventory"


@dataclass
class InventoryRow:
    """One server as the file describes it, and what is wrong with it."""

    line: int
    name: str
    host: str = ""
    port: str = ""
    user: str = ""
    tags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add_tag(self, tag: str) -> None:
        if tag not in self.tags:
            self.tags.append(tag)


@dataclass
class Inventory:
    format: str
    rows: list[InventoryRow]
    notes: list[tuple[int, str]] = field(default_factory=list)  # lines skipped, and why

    @property
    def format_label(self) -> str:
        return FORMATS.get(self.format, self.format)

    @property
    def valid_rows(self) -> list[InventoryRow]:
        return [row for row in self.rows if row.ok]

    @property
    def invalid_rows(self) -> list[InventoryRow]:
        return [row for row in self.rows if not row.ok]


# --- entry point ---------------------------------------------------------------------------


def inventory_parse(text: str, *, format: str = "auto") -> Inventory:
    """Parse `text` in `format` ("auto" detects it). Raises InventoryError for the file."""
    if len(text.encode("utf-8", errors="replace")) > MAX_INVENTORY_BYTES:
        raise InventoryError(
            f"The inventory is larger than {MAX_INVENTORY_BYTES // 1000} kB. Split it and "
            "import the parts one after the other.",
            field="text",
        )
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InventoryError("Paste an inventory or choose a file to upload.", field="text")
    if format == "auto":
        format = detect_format(text)
    parsers: dict[str, Callable[[str], Inventory]] = {
        "ansible_ini": parse_ansible_ini,
        "ansible_yaml": parse_ansible_yaml,
        "ssh_config": parse_ssh_config,
        "csv": parse_csv,
    }
    if format not in parsers:
        raise InventoryError(
            "Choose the format: " + ", ".join(FORMATS.values()) + ".", field="format"
        )
    inventory = parsers[format](text)
    if len(inventory.rows) > MAX_INVENTORY_SERVERS:
        raise InventoryError(
            f"The inventory names {len(inventory.rows)} servers; one import takes at most "
            f"{MAX_INVENTORY_SERVERS}. Split it and import the parts one after the other.",
            field="text",
        )
    return inventory


def detect_format(text: str) -> str:
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith(("#", ";"))
    ]
    if not lines:
        return "ansible_ini"
    first = lines[0]
    if first == "---" or re.match(r"^[\w.-]+:\s*$", first):
        return "ansible_yaml"
    if re.match(r"^(host|match|include)(\s|=)", first, re.IGNORECASE):
        return "ssh_config"
    if re.match(r"^(hostname|user|port|identityfile)(\s|=)", first, re.IGNORECASE):
        return "ssh_config"
    header = [cell.strip().lower() for cell in first.split(",")]
    if "name" in header and "address" in header:
        return "csv"
    return "ansible_ini"


# --- Ansible -------------------------------------------------------------------------------

_HOST_VARS = {
    "ansible_host": "host",
    "ansible_ssh_host": "host",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
}


class _Ansible:
    """Groups, their hosts, children and vars, resolved the way Ansible resolves them:
    host vars over group vars, a child group's vars over its parent's."""

    def __init__(self) -> None:
        self.host_lines: dict[str, int] = {}
        self.host_vars: dict[str, dict[str, str]] = {}
        self.group_hosts: dict[str, list[str]] = {}
        self.group_children: dict[str, list[str]] = {}
        self.group_vars: dict[str, dict[str, str]] = {}
        self.group_lines: dict[str, int] = {}
        self.conflicts: dict[str, list[str]] = {}
        self.notes: list[tuple[int, str]] = []

    def add_host(self, name: str, line: int, group: str, variables: dict[str, str]) -> None:
        self.host_lines.setdefault(name, line)
        known = self.host_vars.setdefault(name, {})
        for key, value in variables.items():
            if key in known and known[key] != value and key in _HOST_VARS:
                self.conflicts.setdefault(name, []).append(
                    f"{key} is {known[key]!r} on line {self.host_lines[name]} and {value!r} "
                    f"on line {line}."
                )
            known[key] = value
        self.group_hosts.setdefault(group, [])
        if name not in self.group_hosts[group]:
            self.group_hosts[group].append(name)

    def parents(self, group: str) -> list[str]:
        return [parent for parent, kids in self.group_children.items() if group in kids]

    def depth(self, group: str, seen: frozenset[str] = frozenset()) -> int:
        """How deep the group sits under `all` (cycles count once)."""
        if group == "all":
            return 0
        parents = [p for p in self.parents(group) if p not in seen and p != group]
        if not parents:
            return 1
        return 1 + max(self.depth(p, seen | {group}) for p in parents)

    def groups_of(self, host: str) -> list[str]:
        """Every group the host is in, directly or through children, in the order
        Ansible applies their vars: shallow groups first, then by name."""
        queue = [group for group, hosts in self.group_hosts.items() if host in hosts]
        seen: list[str] = []
        while queue:
            group = queue.pop(0)
            if group in seen:
                continue
            seen.append(group)
            queue += self.parents(group)
        return sorted(seen, key=lambda group: (self.depth(group), group))

    def rows(self, format: str) -> Inventory:
        rows = []
        for name, line in self.host_lines.items():
            groups = self.groups_of(name)
            merged: dict[str, str] = dict(self.group_vars.get("all", {}))
            for group in groups:  # parents first, so children win
                merged.update(self.group_vars.get(group, {}))
            merged.update(self.host_vars.get(name, {}))
            if merged.get("ansible_connection", "ssh") not in ("ssh", "smart", "paramiko"):
                self.notes.append(
                    (
                        line,
                        f"{name} skipped: ansible_connection={merged['ansible_connection']}, "
                        "not SSH.",
                    )
                )
                continue
            row = InventoryRow(line=line, name=name, host=name)
            for key, attribute in _HOST_VARS.items():
                if key in merged and key.startswith("ansible_ssh_"):
                    setattr(row, attribute, merged[key])
            for key, attribute in _HOST_VARS.items():
                if key in merged and not key.startswith("ansible_ssh_"):
                    setattr(row, attribute, merged[key])
            for group in sorted(groups):
                if group not in _SKIPPED_GROUPS:
                    row.add_tag(group.lower())
            row.errors += [
                f"{name} is listed twice with different values: {c}"
                for c in self.conflicts.get(name, [])
            ]
            rows.append(row)
        return Inventory(format=format, rows=rows, notes=self.notes)


_RANGE = re.compile(r"\[([0-9]+|[a-z]):([0-9]+|[a-z])(?::([0-9]+))?\]")


def expand_host_range(pattern: str) -> list[str]:
    """Ansible host ranges: web[01:03].example.com → web01…web03; db-[a:c] → db-a…db-c."""
    match = _RANGE.search(pattern)
    if not match:
        return [pattern]
    start, end, step_text = match.group(1), match.group(2), match.group(3)
    step = int(step_text or 1)
    if step < 1:
        raise ValueError(f"The range {match.group(0)} needs a step of 1 or more.")
    if start.isdigit() != end.isdigit():
        raise ValueError(f"The range {match.group(0)} mixes letters and digits.")
    if start.isdigit():
        width = len(start) if start.startswith("0") else 0
        values = [str(n).zfill(width) for n in range(int(start), int(end) + 1, step)]
    else:
        values = [chr(n) for n in range(ord(start), ord(end) + 1, step)]
    if not values:
        raise ValueError(f"The range {match.group(0)} is empty: it must count upwards.")
    names: list[str] = []
    head, tail = pattern[: match.start()], pattern[match.end() :]
    for value in values:
        names += expand_host_range(head + value + tail)
        if len(names) > MAX_RANGE:
            raise ValueError(f"{pattern} expands to more than {MAX_RANGE} hosts.")
    return names


def _ini_section(line: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"\[([^\]:]+)(?::(vars|children))?\]", line)
    if not match:
        return None
    return match.group(1).strip(), match.group(2) or "hosts"


def parse_ansible_ini(text: str) -> Inventory:
    """An Ansible INI inventory: [group], [group:vars], [group:children], host ranges."""
    inv = _Ansible()
    group, kind = "ungrouped", "hosts"
    bad_lines: list[InventoryRow] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = _ini_section(line)
            if section is None:
                bad_lines.append(
                    InventoryRow(
                        line=number,
                        name=line[:100],
                        errors=[f"{line!r} is not a group header like [web] or [web:vars]."],
                    )
                )
                group, kind = "", "skip"
                continue
            group, kind = section
            inv.group_lines.setdefault(group, number)
            if kind == "hosts":
                inv.group_hosts.setdefault(group, [])
            continue
        if kind == "skip":
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            bad_lines.append(
                InventoryRow(
                    line=number, name=line[:100], errors=[f"Cannot read this line: {exc}."]
                )
            )
            continue
        if not tokens:
            continue
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                bad_lines.append(
                    InventoryRow(
                        line=number,
                        name=line[:100],
                        errors=[f"A [{group}:vars] line reads name=value, not {line!r}."],
                    )
                )
                continue
            value = re.split(r"\s+[#;]", value.strip(), maxsplit=1)[0]  # an inline comment
            inv.group_vars.setdefault(group, {})[key.strip()] = _unquote(value.strip())
        elif kind == "children":
            inv.group_children.setdefault(group, [])
            if tokens[0] not in inv.group_children[group]:
                inv.group_children[group].append(tokens[0])
        else:
            variables: dict[str, str] = {}
            problems = []
            for token in tokens[1:]:
                key, sep, value = token.partition("=")
                if not sep:
                    problems.append(f"{token!r} is not a name=value host variable.")
                    continue
                variables[key] = value
            try:
                names = expand_host_range(tokens[0])
            except ValueError as exc:
                bad_lines.append(InventoryRow(line=number, name=tokens[0][:100], errors=[str(exc)]))
                continue
            for name in names:
                inv.add_host(name, number, group, variables)
                if problems:
                    inv.conflicts.setdefault(name, []).extend(problems)
    for parent, kids in inv.group_children.items():
        for kid in kids:
            if kid not in inv.group_hosts and kid not in inv.group_children:
                inv.notes.append(
                    (
                        inv.group_lines.get(parent, 0),
                        f"[{parent}:children] names {kid}, a group with no hosts in this file.",
                    )
                )
    inventory = inv.rows("ansible_ini")
    inventory.rows = sorted(inventory.rows + bad_lines, key=lambda row: row.line)
    return inventory


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_ansible_yaml(text: str) -> Inventory:
    """An Ansible YAML inventory (all: hosts/vars/children, nested), read with the safe loader."""
    try:
        yaml.safe_load(text)  # refuses anything but plain data, with the line of the problem
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError(f"This is not valid YAML{where}: {problem}.", field="text") from None
    if root is None:
        raise InventoryError("The YAML inventory is empty.", field="text")
    if not isinstance(root, yaml.MappingNode):
        raise InventoryError(
            "An Ansible YAML inventory starts with a group, usually 'all:', with hosts, vars "
            "and children under it.",
            field="text",
        )
    inv = _Ansible()
    walked = [0]

    def count() -> None:
        walked[0] += 1
        if walked[0] > MAX_YAML_NODES:
            raise InventoryError(
                "The YAML inventory is too deeply nested or repeats itself too often.",
                field="text",
            )

    def scalar(node: yaml.Node) -> str:
        count()
        return str(node.value) if isinstance(node, yaml.ScalarNode) else ""

    def items(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
        count()
        if isinstance(node, yaml.MappingNode):
            return list(node.value)
        return []

    def group(name: str, node: yaml.Node, depth: int) -> None:
        if depth > 50:
            raise InventoryError("The YAML inventory nests groups too deeply.", field="text")
        inv.group_lines.setdefault(name, node.start_mark.line + 1)
        inv.group_hosts.setdefault(name, [])
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return
        if not isinstance(node, yaml.MappingNode):
            inv.notes.append(
                (
                    node.start_mark.line + 1,
                    f"{name}: a group is a mapping of hosts, vars and "
                    "children; this one was skipped.",
                )
            )
            return
        for key_node, value in items(node):
            key = scalar(key_node)
            if key == "hosts":
                for host_node, host_vars in items(value):
                    host = scalar(host_node)
                    variables = {scalar(k): scalar(v) for k, v in items(host_vars)}
                    try:
                        names = expand_host_range(host)
                    except ValueError as exc:
                        inv.notes.append((host_node.start_mark.line + 1, str(exc)))
                        continue
                    for each in names:
                        inv.add_host(each, host_node.start_mark.line + 1, name, variables)
            elif key == "vars":
                inv.group_vars.setdefault(name, {}).update(
                    {scalar(k): scalar(v) for k, v in items(value)}
                )
            elif key == "children":
                for child_node, child in items(value):
                    child_name = scalar(child_node)
                    kids = inv.group_children.setdefault(name, [])
                    if child_name not in kids:
                        kids.append(child_name)
                    group(child_name, child, depth + 1)
            else:
                inv.notes.append(
                    (
                        key_node.start_mark.line + 1,
                        f"{key!r} under group {name} is not hosts, vars or children; skipped.",
                    )
                )

    for key_node, value in items(root):
        group(scalar(key_node), value, 0)
    inventory = inv.rows("ansible_yaml")
    inventory.rows.sort(key=lambda row: row.line)
    return inventory


# --- OpenSSH ssh_config --------------------------------------------------------------------


def _ssh_directive(line: str) -> tuple[str, str]:
    match = re.match(r"^(\S+?)\s*(?:=\s*|\s+)(.*)$", line)
    if not match:
        return line.lower(), ""
    return match.group(1).lower(), match.group(2).strip()


def _is_pattern(alias: str) -> bool:
    return any(c in alias for c in "*?!")


def _matches(patterns: list[str], alias: str) -> bool:
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if fnmatch.fnmatchcase(alias, pattern[1:]):
                return False
        elif fnmatch.fnmatchcase(alias, pattern):
            matched = True
    return matched


def parse_ssh_config(text: str) -> Inventory:
    """Host blocks of an OpenSSH client config: one server per concrete Host alias.

    HostName, Port and User apply the way ssh applies them (the first value
    obtained wins, wildcard blocks included); wildcard patterns themselves are
    defaults, not servers, and are skipped with a note.
    """
    blocks: list[tuple[list[str], int, dict[str, str]]] = [(["*"], 0, {})]  # before any Host
    notes: list[tuple[int, str]] = []
    aliases: list[tuple[str, int]] = []
    current: dict[str, str] | None = blocks[0][2]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, value = _ssh_directive(line)
        if key == "host":
            patterns = value.split()
            current = {}
            blocks.append((patterns, number, current))
            wildcards = [alias for alias in patterns if _is_pattern(alias)]
            if wildcards:
                notes.append(
                    (
                        number,
                        f"Host {' '.join(wildcards)}: patterns set defaults for other hosts; "
                        "they are not servers themselves, so none was added for them.",
                    )
                )
            for alias in patterns:
                if not _is_pattern(alias):
                    aliases.append((alias, number))
        elif key == "match":
            current = None
            notes.append((number, "Match block skipped: Pipetower reads Host blocks only."))
        elif key == "include":
            notes.append((number, f"Include {value} not followed: import that file on its own."))
        elif current is not None and key in ("hostname", "port", "user"):
            current.setdefault(key, _unquote(value))
    rows = []
    for alias, number in aliases:
        values: dict[str, str] = {}
        for patterns, _line, settings in blocks:
            if _matches(patterns, alias):
                for key, value in settings.items():
                    values.setdefault(key, value)
        host = values.get("hostname", alias).replace("%h", alias).replace("%%", "%")
        rows.append(
            InventoryRow(
                line=number,
                name=alias,
                host=host,
                port=values.get("port", ""),
                user=values.get("user", ""),
            )
        )
    return Inventory(format="ssh_config", rows=rows, notes=notes)


# --- CSV -----------------------------------------------------------------------------------


def parse_csv(text: str) -> Inventory:
    """CSV with a header line naming its columns: name and address, optionally port, user, tags."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        header = []
    columns = [cell.strip().lower() for cell in header]
    if "name" not in columns or "address" not in columns:
        raise InventoryError(
            "The first line of a CSV file is its header: name,address,port,user,tags "
            "(name and address are required; port, user and tags are optional).",
            field="text",
        )
    unknown = [c for c in columns if c and c not in CSV_COLUMNS]
    if unknown:
        raise InventoryError(
            f"The CSV header has columns Pipetower does not know: {', '.join(unknown)}. "
            "Use name,address,port,user,tags.",
            field="text",
        )
    rows = []
    line = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append(
                InventoryRow(line=reader.line_num, name="", errors=[f"Cannot read: {exc}."])
            )
            continue
        number = line + 1
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            rows.append(
                InventoryRow(
                    line=number,
                    name=cells[0].strip()[:100],
                    errors=[
                        f"This line has {len(cells)} values and the header {len(columns)} "
                        'columns. Quote a value that holds a comma ("web, db").'
                    ],
                )
            )
            continue
        record = dict(zip(columns, (cell.strip() for cell in cells), strict=False))
        rows.append(
            InventoryRow(
                line=number,
                name=record.get("name", ""),
                host=record.get("address", ""),
                port=record.get("port", ""),
                user=record.get("user", ""),
                tags=[t for t in re.split(r"[;,\s]+", record.get("tags", "")) if t],
            )
        )
    return Inventory(format="csv", rows=rows)


# --- validation ----------------------------------------------------------------------------


def inventory_check(
    inventory: Inventory,
    *,
    existing_names: Iterable[str],
    existing_addresses: dict[tuple[str, str, int], str],
    default_user: str = "",
) -> Inventory:
    """Validate every row as the server form would, and find duplicates.

    `existing_addresses` maps (user, host, port) of the team's servers to their
    names. Fills each row's `errors`; valid rows end up with their normalised host,
    port, user and tags.
    """
    from pipetower.servers import services

    taken = {name.lower(): name for name in existing_names}
    names_seen: dict[str, int] = {}
    addresses_seen: dict[tuple[str, str, int], InventoryRow] = {}
    for row in inventory.rows:
        if row.errors and not row.host:  # a line that is not a server at all
            continue
        errors = row.errors
        name = _attempt(errors, services._validate_name, row.name)
        host = _attempt(errors, services._allowed_host, row.host)
        port = _attempt(errors, services.validate_port, row.port or 22)
        user_value = row.user or default_user
        if not user_value:
            errors.append(
                "No SSH user: set one in the inventory (ansible_user, User or the user "
                "column) or give a default user."
            )
            user = None
        else:
            user = _attempt(errors, services.validate_username, user_value)
        tags = _attempt(errors, services.parse_tags, row.tags)
        if isinstance(name, str):
            key = name.lower()
            if key in taken:
                errors.append(f"This team already has a server named {taken[key]!r}.")
            elif key in names_seen:
                errors.append(f"Duplicate: {name!r} is already on line {names_seen[key]}.")
            else:
                names_seen[key] = row.line
            row.name = name
        if isinstance(host, str) and isinstance(port, int) and isinstance(user, str):
            address = (user, host, port)
            if address in existing_addresses:
                errors.append(
                    f"{user}@{host}:{port} is already the team's server "
                    f"{existing_addresses[address]!r}."
                )
            elif address in addresses_seen:
                first = addresses_seen[address]
                errors.append(
                    f"Duplicate: {user}@{host}:{port} is already {first.name!r} on line "
                    f"{first.line}."
                )
            else:
                addresses_seen[address] = row
        if isinstance(host, str):
            row.host = host
        if isinstance(port, int):
            row.port = str(port)
        if isinstance(user, str):
            row.user = user
        if isinstance(tags, list):
            row.tags = tags
    return inventory


def _attempt(errors: list[str], function: Callable[[Any], object], value: Any) -> object:
    """`function(value)`, or None with the ServiceError's message added to `errors`."""
    try:
        return function(value)
    except ServiceError as exc:
        errors.append(exc.message)
        return None
