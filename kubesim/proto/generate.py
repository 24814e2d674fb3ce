#!/usr/bin/env python3
"""Writes kubesim/proto/k8s-schema.json: the Kubernetes API's protobuf
messages (field numbers and wire types) joined with their JSON field names.

kubesim decodes and encodes `application/vnd.kubernetes.protobuf` with it
and derives its OpenAPI documents and strict field validation from it.

Sources (both Apache-2.0, from crates.io; `cargo fetch` them first, e.g. by
`cargo info k8s-pb@0.9.0` and a build of the workspace for k8s-openapi):
- k8s-pb 0.9.0: prost code generated from Kubernetes' generated.proto files
  (field numbers, wire types, message types, and each resource's group,
  version, kind and plural);
- k8s-openapi 0.29 (v1_37): the JSON names of every field.
The two are joined on (module, message, Rust field name): both crates
derive their Rust names from the same API field names.

Usage: python3 kubesim/proto/generate.py [CARGO_HOME]
"""

import glob
import json
import os
import re
import sys

CARGO_HOME = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "CARGO_HOME", os.path.expanduser("~/.cargo"))


def crate_dir(name):
    found = sorted(glob.glob(f"{CARGO_HOME}/registry/src/*/{name}"))
    if not found:
        sys.exit(f"{name} is not in {CARGO_HOME}/registry/src: fetch it with cargo first")
    return found[-1]


PB = crate_dir("k8s-pb-0.9.0") + "/src"
OA = crate_dir("k8s-openapi-0.29.0") + "/src/v1_37"

# Groups kubesim serves, plus what every request and response shares.
MODULES = [
    "api.core.v1", "api.apps.v1", "api.batch.v1", "api.networking.v1",
    "api.rbac.v1", "api.storage.v1", "api.coordination.v1", "api.policy.v1",
    "api.autoscaling.v1", "api.autoscaling.v2", "api.events.v1",
    "api.discovery.v1", "api.authentication.v1", "api.authorization.v1",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1",
    "apimachinery.pkg.apis.meta.v1", "apimachinery.pkg.api.resource",
    "apimachinery.pkg.util.intstr", "apimachinery.pkg.runtime",
]

# `serviceaccounts/{name}/token` and `{workload}/{name}/scale`.
SUBRESOURCE_KINDS = {
    "authentication.k8s.io/v1/TokenRequest": "api.authentication.v1.TokenRequest",
    "autoscaling/v1/Scale": "api.autoscaling.v1.Scale",
}

STRUCT = re.compile(r"^pub struct (\w+) \{(\})?$")
ATTR = re.compile(r'^    #\[prost\((.*)\)\]$')
FIELD = re.compile(r"^    pub (r#)?(\w+): (.*),$")
RESOURCE = re.compile(
    r'impl crate::Resource for (\w+) \{\s*const API_VERSION: &\'static str = "([^"]*)";'
    r'\s*const GROUP: &\'static str = "([^"]*)";\s*const VERSION: &\'static str = "([^"]*)";'
    r'\s*const KIND: &\'static str = "([^"]*)";\s*const URL_PATH_SEGMENT: &\'static str = "([^"]*)";'
    r'\s*type Scope = crate::(\w+);')


KNOWN = {}


def json_names(module):
    """(lower-case struct name) -> {rust field name: JSON name} from k8s-openapi."""
    out = {}
    path = os.path.join(OA, *module.split("."))
    for f in glob.glob(path + "/*.rs"):
        text = open(f).read()
        m = re.search(r"^pub struct (\w+)", text, re.M)
        if not m:
            continue
        pairs = dict((rust, js) for js, rust in re.findall(r'"([^"]+)" => Field::Key_(\w+),', text))
        out[m.group(1).lower()] = pairs
    return out


def norm(name):
    return re.sub(r"[_$\-]", "", name).lower()


def camel(rust):
    head, *rest = rust.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def resolve(module, rust_type):
    """A prost field type to the full name of the message it holds."""
    t = rust_type
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<",
                    "::prost::alloc::boxed::Box<"):
        while t.startswith(wrapper):
            t = t[len(wrapper):-1]
    parts = module.split(".")
    segments = t.split("::")
    while segments and segments[0] == "super":
        parts = parts[:-1]
        segments = segments[1:]
    if segments and segments[0] == "crate":
        parts, segments = [], segments[1:]
    return ".".join(parts + segments)


def messages(module):
    path = os.path.join(PB, *module.split("."), "mod.rs")
    names = json_names(module)
    # rustfmt wraps long field types over several lines: join them first.
    lines, pending = [], None
    for line in open(path).read().split("\n"):
        if pending is not None:
            pending += " " + line.strip()
            if pending.count("<") == pending.count(">") and pending.endswith(","):
                lines.append(re.sub(r"<\s+", "<", pending.replace(", >", ">")))
                pending = None
            continue
        if line.startswith("    pub ") and not line.endswith(",") and not line.endswith("{"):
            pending = line
            continue
        lines.append(line)
    msgs, current, attr = {}, None, None
    for line in lines:
        m = STRUCT.match(line)
        if m:
            current = f"{module}.{m.group(1)}"
            msgs[current] = []
            known = names.get(m.group(1).lower(), {})
            # Where the crates split a name differently (openAPIV3Schema:
            # open_apiv3_schema / open_api_v3_schema), letters decide.
            loose = {norm(js): js for js in known.values()}
            KNOWN[current] = set(known.values())
            if m.group(2):  # an empty message
                current = None
            continue
        if current is None:
            continue
        if line == "}":
            current = None
            continue
        a = ATTR.match(line)
        if a:
            attr = a.group(1)
            continue
        f = FIELD.match(line)
        if f and attr:
            rust, rust_type = f.group(2), f.group(3)
            kind = attr.split(",")[0].split("=")[0].strip()
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            json_name = known.get(rust) or loose.get(norm(rust))
            field = {"n": tag, "j": json_name or camel(rust)}
            # A message field the JSON form does not name is embedded in Go
            # (`json:",inline"`): its fields appear in this object.
            if json_name is None and known and kind == "message":
                field["i"] = True
            if kind == "btree_map":
                key, value = re.search(r'map = "(\w+), (\w+)"', attr).groups()
                field["k"] = "map"
                field["v"] = value
                if value == "message":
                    inner = rust_type[rust_type.index(",") + 1:].strip()[:-1].strip()
                    field["m"] = resolve(module, inner)
            else:
                field["k"] = kind
                if "repeated" in attr:
                    field["r"] = True
                if kind == "message":
                    field["m"] = resolve(module, rust_type)
            msgs[current].append(field)
            attr = None
    return msgs


def main():
    schema = {"messages": {}, "kinds": {}}
    for module in MODULES:
        schema["messages"].update(messages(module))
        text = open(os.path.join(PB, *module.split("."), "mod.rs")).read()
        for struct, api_version, _g, _v, kind, plural, scope in RESOURCE.findall(text):
            if scope == "SubResourceScope":
                continue
            schema["kinds"][f"{api_version}/{kind}"] = {
                "message": f"{module}.{struct}", "plural": plural}
        # Lists carry the items' kind plus "List".
        for name in list(schema["messages"]):
            if name.startswith(module + ".") and name.endswith("List"):
                short = name[len(module) + 1:]
                item = schema["kinds"].get(next(
                    (k for k, v in schema["kinds"].items()
                     if v["message"] == f"{module}.{short[:-4]}"), ""))
                if item:
                    api_version = next(k for k, v in schema["kinds"].items()
                                       if v["message"] == f"{module}.{short[:-4]}").rsplit("/", 1)[0]
                    schema["kinds"][f"{api_version}/{short}"] = {"message": name}
    # Bodies of subresources, which k8s-pb does not mark as resources.
    for kind, message in SUBRESOURCE_KINDS.items():
        schema["kinds"][kind] = {"message": message}
    # Inline only where the embedded message's fields are the parent's JSON
    # fields (not a field k8s-openapi does not have yet).
    for name, fields in schema["messages"].items():
        for f in fields:
            if f.get("i"):
                inner = {g["j"] for g in schema["messages"].get(f["m"], [])}
                if len(inner & KNOWN.get(name, set())) * 2 < max(len(inner), 1):
                    del f["i"]
    meta = "apimachinery.pkg.apis.meta.v1"
    for kind in ["Status", "Table", "DeleteOptions", "WatchEvent", "PartialObjectMetadata",
                 "PartialObjectMetadataList", "APIResourceList", "APIGroupList"]:
        schema["kinds"][f"meta.k8s.io/v1/{kind}"] = {"message": f"{meta}.{kind}"}
    schema["kinds"]["v1/Status"] = {"message": f"{meta}.Status"}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "k8s-schema.json")
    with open(out, "w") as f:
        json.dump(schema, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")
    print(f"{out}: {len(schema['messages'])} messages, {len(schema['kinds'])} kinds")


main()
