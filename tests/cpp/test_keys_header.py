"""cpp/include/gnnff/keys.h must mirror gnnff.keys and the metadata names of gnnff.contract."""

import os
import re

from gnnff import contract, keys

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "cpp", "include", "gnnff", "keys.h")
# one declaration, whatever the pointer spacing and line wrapping clang-format chose
CONSTANT = re.compile(r'inline\s+constexpr\s+const\s+char\s*\*\s*(\w+)\s*=\s*"([^"]*)"\s*;')
NAMESPACE = re.compile(r"namespace\s+(\w+)\s*\{")


def header_namespaces():
    """{namespace: {NAME: value}} for the string constants of keys.h, and REQUIRED_KEYS."""
    text = re.sub(r"//[^\n]*", "", open(HEADER).read())  # comments may hold example declarations
    spaces, current = {}, None
    for m in re.finditer(f"{NAMESPACE.pattern}|{CONSTANT.pattern}", text):
        if m.group(1):
            if m.group(1) != "gnnff":
                current = m.group(1)
                spaces[current] = {}
        elif current:
            spaces[current][m.group(2)] = m.group(3)
    body = re.search(r"REQUIRED_KEYS\[\]\s*=\s*\{([^}]*)\}", text, re.S).group(1)
    required = [name.strip() for name in body.split(",") if name.strip()]
    return spaces, required


def python_string_constants(module, names=None):
    return {
        k: v
        for k, v in vars(module).items()
        if k.isupper() and isinstance(v, str) and (names is None or names(k))
    }


def test_keys_namespace_equals_gnnff_keys():
    # a key added to gnnff/keys.py must be added to keys.h too (even Python-only ones), so that
    # a name can never be reused with another meaning on one side
    spaces, _ = header_namespaces()
    assert spaces["keys"] == python_string_constants(keys), (
        "cpp/include/gnnff/keys.h and python/gnnff/keys.py differ: add/change the constant in "
        "namespace gnnff::keys of keys.h (same NAME, same string)"
    )


def test_contract_namespace_equals_gnnff_contract():
    spaces, required = header_namespaces()
    expected = python_string_constants(
        contract,
        lambda k: k.startswith("META_") or k in ("CONTRACT_VERSION", "UNITS", "LAYERWISE_VERSION"),
    )
    assert spaces["contract"] == expected
    assert [spaces["contract"][name] for name in required] == list(contract.REQUIRED_KEYS)


def test_parser_reads_every_constant():
    # guard against a parser that silently finds nothing: it must read every constant
    spaces, required = header_namespaces()
    assert len(spaces["keys"]) >= 20 and len(required) == 8
