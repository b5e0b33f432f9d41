"""Reading the site file and saying what is wrong with it: every problem at once, each with the
file, its line, the YAML path (`stations[2].devices[0].port`) and what to write instead (the
field's documented description). The models themselves are in station.config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from devices.errors import DeviceConfigError
from devices.profile import ModbusProfile, SerialProfile, available_profiles, load_profile
from devices.settings import ModbusRtuDevice, ModbusTcpDevice, SerialDevice
from scoring.text_file import TextFileError, read_text_file
from scoring.yaml_strict import DuplicateKeyError, load_strict
from station.config import ConfigError, SiteConfig


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Line (1-based) of the YAML node at `loc`, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("modbus-tcp", "modbus-rtu", "serial"):
            continue  # pydantic's union tag, not a key in the file
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _field_help(loc: tuple[int | str, ...]) -> str:
    """The documented description of the field at `loc`: what a valid value looks like."""
    model: Any = SiteConfig
    desc = ""
    for part in loc:
        if part in ("modbus-tcp", "modbus-rtu", "serial"):
            model = {"modbus-tcp": ModbusTcpDevice, "modbus-rtu": ModbusRtuDevice, "serial": SerialDevice}[part]
            continue
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return ""
        info = fields[part]
        desc = info.description or ""
        ann = info.annotation
        inner = getattr(ann, "__args__", (ann,))
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return desc


def read_site_config(path: Path, encoding: str | None = None) -> SiteConfig:
    """`station.config.load_site_config`: read, validate, and report every problem at once."""
    try:
        text = read_text_file(path, encoding, what="the site config").text
    except TextFileError as err:
        raise ConfigError(str(err)) from err
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot read the site config ({err.strerror}); check the path given to --config"
        ) from err
    try:
        raw = load_strict(text)
        root = yaml.compose(text)
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}; fix the syntax at the line shown") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with site:, stations: ...; see examples/site.yaml")
    try:
        config = SiteConfig.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = tuple(e["loc"])
            if e["type"] == "site_reference":
                at = tuple(e["ctx"]["at"])
                line = line_of(root, at)
                problems.append(f"{path}:{line}: {_path(at)}: {e['msg']}")
                continue
            if e["type"] == "union_tag_invalid":
                msg = "kind must be one of modbus-tcp, modbus-rtu, serial"
            else:
                msg = e["msg"]
                shown = e["type"] not in ("missing", "extra_forbidden")
                if shown and "input" in e and not isinstance(e["input"], dict):
                    msg += f" (got {e['input']!r})"
            hint = _field_help(loc)
            if e["type"] == "extra_forbidden":
                hint = "remove it or fix its spelling; see examples/site.yaml for the keys"
            line = line_of(root, loc)
            where = f"{path}:{line}" if line else str(path)
            problems.append(f"{where}: {_path(loc)}: {msg}" + (f"; expected: {hint}" if hint else ""))
        raise ConfigError("site config is invalid:\n  " + "\n  ".join(problems)) from err
    _check_profiles(path, root, config)
    return config


def _check_profiles(path: Path, root: yaml.Node | None, config: SiteConfig) -> None:
    problems = []
    for si, st in enumerate(config.stations):
        for di, dev in enumerate(st.devices):
            loc: tuple[int | str, ...] = ("stations", si, "devices", di, "profile")
            where = f"{path}:{line_of(root, loc)}: {_path(loc)}"
            try:
                profile = load_profile(dev.profile)
            except DeviceConfigError as err:
                problems.append(f"{where}: {err}")
                continue
            wants_serial = isinstance(dev, SerialDevice)
            if wants_serial and not isinstance(profile, SerialProfile):
                problems.append(f"{where}: {dev.profile} is a Modbus register map; a serial device needs a frame "
                                f"profile ({', '.join(available_profiles())})")
            if not wants_serial and not isinstance(profile, ModbusProfile):
                problems.append(f"{where}: {dev.profile} is a serial frame map; kind {dev.kind} needs a Modbus profile")
    if problems:
        raise ConfigError("site config is invalid:\n  " + "\n  ".join(problems))
