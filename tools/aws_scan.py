"""`make aws-scan`: checkov's `terraform_plan` framework over the AWS resources of every stack.

Usage: python -m tools.aws_scan [STACK ...]      (default: every committed stack)
       python -m tools.aws_scan --schema-from SCHEMA.json [--provider-version V]
           (maintainers: rebuild tools/data/terraform-aws-schema.json from the output of
           `terraform providers schema -json`, for the types of the stacks and the tests)

checkov has no Pulumi framework, but it reads the JSON of `terraform show -json`, and Pulumi's
AWS provider is a bridge of Terraform's: every `aws:` resource is a Terraform resource type with
the same attributes under camelCase names. So each recorded plan (tools/engine.py) is translated
into that JSON: type tokens to Terraform resource types, camelCase inputs to the snake_case
attributes and nested blocks of the provider schema (tools/data/terraform-aws-schema.json), and
Pulumi's property dependencies to the `configuration` references from which checkov draws the
edges its graph checks (CKV2_*) follow. checkov then runs once over the translated stacks.

The scan exits 1 on anything that would let a finding pass unseen: an `aws:` type or an input
the translation does not know, a file checkov did not parse, a resource it did not read, and a
failed check that tools/data/aws-scan-exceptions.json does not cover. Each entry there names a
check, a Pulumi type token, resource names (or globs) and, where not all, the stacks; it is
either `pending` (a weakness to fix, with the planned fix) or `accepted` (with the reason it is
not one). A name of an entry that matches no finding in one of its stacks is stale and fails
the scan too, so the file shrinks as fixes land.

What checkov reads (checkov 3.3.30, the pin of requirements-scan.txt; files under
`checkov/terraform/` of its package):
- `context_parsers/tf_plan/__init__.py`: a document counts as a plan only with
  `terraform_version` and `planned_values`.
- `plan_parser.py` `parse_tf_plan`: `planned_values.root_module.resources[]` with `address`,
  `mode: managed`, `type`, `name` (unique per type: the `configuration` entry is found by type
  and name) and `values`; `_hclify`: nested blocks as lists of objects, and the policy
  attributes of `RESOURCE_TYPES_JSONIFY` as JSON strings; `_add_references`: each
  `configuration.root_module.resources[].expressions.<attribute>.references` list is kept on
  the resource.
- `graph/graph_builder/local_graph.py` (`_build_edges_for_vertex`): an edge joins two resources
  where an attribute of one, those references included, names the other as `<type>.<name>`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .engine import UNKNOWN_MASK, Plan, Registration, run_stack
from .security_scan import CHECKOV, MIN_REASON_LENGTH, checkov_json
from .staging import committed_stacks

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SCHEMA_FILE = DATA / "terraform-aws-schema.json"
EXCEPTIONS_FILE = DATA / "aws-scan-exceptions.json"
PROVIDER = "registry.terraform.io/hashicorp/aws"

# Type tokens whose Terraform type is not `aws_<module>_<snake_case(resource)>`, as the bridge
# maps them (pulumi/pulumi-aws provider/cmd/pulumi-resource-aws/bridge-metadata.json,
# `renames.resources`): most of `ec2` has no module prefix, `rds` is Terraform's `db`.
# Only tokens the stacks or the tests use, so that the schema file proves each; a token missing
# here whose rule gives no type of the schema file fails the scan.
TYPE_RENAMES = {
    "aws:amp/alertManagerDefinition:AlertManagerDefinition": "aws_prometheus_alert_manager_definition",
    "aws:amp/ruleGroupNamespace:RuleGroupNamespace": "aws_prometheus_rule_group_namespace",
    "aws:amp/scraper:Scraper": "aws_prometheus_scraper",
    "aws:amp/workspace:Workspace": "aws_prometheus_workspace",
    "aws:autoscaling/tag:Tag": "aws_autoscaling_group_tag",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:ec2/natGateway:NatGateway": "aws_nat_gateway",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:rds/eventSubscription:EventSubscription": "aws_db_event_subscription",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
}
# (Terraform type, snake_case input) -> attribute, where Pulumi renamed an attribute outright
# (the bridge's field overrides in pulumi-aws provider/resources.go): not a case or plural change.
ATTRIBUTE_RENAMES = {
    ("aws_cloudwatch_metric_alarm", "name"): "alarm_name",
    ("aws_sns_topic_subscription", "topic"): "topic_arn",
}
# Attributes of the Terraform provider v6 that pulumi-aws 7 bridges but the v5.100.0 schema of
# the data file lacks (the only provider build at hand, see its `source`): passed on as they are.
NEWER_ATTRIBUTES = {
    ("aws_eks_cluster", "deletion_protection"),
}
# Inputs with nothing for a check to read: Pulumi's copy of the provider's default tags, and the
# provider's own operation timeouts (a Plugin Framework resource, such as aws_prometheus_scraper,
# takes them as an input; the schema file leaves `timeouts` blocks out, see compact_block).
PULUMI_ONLY_INPUTS = {"tagsAll", "timeouts"}
# Types only tests/test_aws_scan.py's deliberately bad resources use: the schema file keeps them.
TEST_ONLY_TYPES = ("aws_default_security_group", "aws_flow_log", "aws_iam_policy")
# What `terraform show -json` names itself; checkov only asks that the key exists.
TERRAFORM_VERSION = "1.11.4"


# --------------------------------------------------------------------------- provider schema


@cache
def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """The data file's resource schemas, by Terraform type (see `compact_block` for the form)."""
    return json.loads(path.read_text())["resource_schemas"]


def compact_block(block: dict[str, Any]) -> dict[str, Any]:
    """A block of `terraform providers schema -json`, reduced to what the translation reads:
    the kind of each attribute an input can set (not those only the provider computes: `id`,
    `arn`, `tags_all`) and each nested block's nesting mode."""
    return {
        "attributes": {name: _kind(attribute.get("type", "string"))
                       for name, attribute in block.get("attributes", {}).items()
                       if attribute.get("optional") or attribute.get("required")},
        # `timeouts` configures Terraform itself; Pulumi has customTimeouts instead.
        "blocks": {name: {"nesting_mode": nested["nesting_mode"], "block": compact_block(nested["block"])}
                   for name, nested in block.get("block_types", {}).items() if name != "timeouts"},
    }


def _kind(type_expression: Any) -> Any:
    """`scalar`, `list`, `map`, {"object": {...}} or {"list_object": {...}} for a cty type."""
    if isinstance(type_expression, str):
        return "scalar"
    collection, element = type_expression
    if collection == "map":
        return "map"
    if collection == "object":
        return {"object": {name: _kind(t) for name, t in element.items()}}
    if collection in ("list", "set") and isinstance(element, list) and element[0] == "object":
        return {"list_object": {name: _kind(t) for name, t in element[1].items()}}
    return "list" if collection in ("list", "set") else "scalar"


def write_schema_subset(provider_schema: dict[str, Any], types: Iterable[str], version: str,
                        path: Path = SCHEMA_FILE) -> None:
    """Write the data file: `types` from the output of `terraform providers schema -json`, one
    line per type so that a change reviews as the types it touches."""
    schemas = provider_schema["provider_schemas"][PROVIDER]["resource_schemas"]
    missing = sorted(set(types) - set(schemas))
    if missing:
        raise ValueError(f"not resource types of {PROVIDER} {version}: {', '.join(missing)}")
    header = {
        "about": "Resource schemas of the Terraform AWS provider, reduced to attribute kinds and block "
                 "nesting, for the types the committed stacks and tests/test_aws_scan.py use: "
                 "tools/aws_scan.py translates Pulumi inputs with them.",
        "provider": PROVIDER,
        "provider_version": version,
        "source": f"`terraform providers schema -json` with hashicorp/aws {version} installed "
                  "from a filesystem mirror (no network), reduced by "
                  "`python -m tools.aws_scan --schema-from <that output>`. pulumi-aws 7 bridges "
                  "provider v6: attributes newer than this version are listed in "
                  "tools/aws_scan.NEWER_ATTRIBUTES.",
    }
    entries = [f"  {json.dumps(name)}: "
               + json.dumps(compact_block(schemas[name]["block"]), sort_keys=True, separators=(",", ":"))
               for name in sorted(set(types))]
    lines = ["{", *(f" {json.dumps(key)}: {json.dumps(value)}," for key, value in header.items()),
             ' "resource_schemas": {', ",\n".join(entries), " }", "}"]
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- names


def snake_case(name: str) -> str:
    """`enableKeyRotation` -> `enable_key_rotation` (Pulumi's names are Terraform's camelCased)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def terraform_type(token: str) -> str:
    """The Terraform resource type of a Pulumi `aws:` type token (checked against the schema by
    `untranslated_types`)."""
    if token in TYPE_RENAMES:
        return TYPE_RENAMES[token]
    _, module_and_resource, _ = token.split(":")
    module, resource = module_and_resource.split("/")
    return f"aws_{module}_{snake_case(resource)}"


def untranslated_types(tokens: Iterable[str], schema: dict[str, Any] | None = None) -> list[str]:
    """The `aws:` tokens whose Terraform type is not in the schema file."""
    schema = load_schema() if schema is None else schema
    return sorted({token for token in tokens if terraform_type(token) not in schema})


def terraform_name(pulumi_name: str, taken: set[str]) -> str:
    """A resource name checkov can split an address on: Pulumi names may hold `.` and `/`
    (`<type>.<name>` references would break on them), and two may meet after that."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", pulumi_name)
    if not re.match(r"[A-Za-z_]", base):
        base = f"r_{base}"
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}_{counter}", counter + 1
    taken.add(name)
    return name


def _singulars(name: str) -> list[str]:
    """Pulumi pluralises repeated blocks (`rules` for `rule`, `lifecyclePolicies`, `aliases`)."""
    candidates = []
    if name.endswith("ies"):
        candidates.append(name[:-3] + "y")
    if name.endswith("ses"):
        candidates.append(name[:-2])
    if name.endswith("s"):
        candidates.append(name[:-1])
    return candidates


def attribute_name(resource_type: str, key: str, block: dict[str, Any]) -> str | None:
    """The attribute or nested block of `block` a Pulumi input `key` stands for, or None."""
    name = snake_case(key)
    if (resource_type, name) in ATTRIBUTE_RENAMES:
        return ATTRIBUTE_RENAMES[(resource_type, name)]
    if (resource_type, name) in NEWER_ATTRIBUTES:
        return name
    known = block["attributes"].keys() | block["blocks"].keys()
    return next((candidate for candidate in [name, *_singulars(name)] if candidate in known), None)


# --------------------------------------------------------------------------- values


@dataclass
class _Context:
    """One resource's translation: where it is, and what did not translate."""

    resource_type: str
    address: str
    unknown_inputs: list[str] = field(default_factory=list)


def translate_block(inputs: dict[str, Any], block: dict[str, Any], context: _Context, path: str,
                    after_unknown: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pulumi inputs (camelCase, MaxItems=1 blocks flattened to objects) as Terraform `values`
    (snake_case, every block a list of objects). An input the schema lacks is kept snake_cased,
    so a check that reads it still may, and recorded in `context.unknown_inputs`. A secret stays
    its mask (tools/engine.SECRET_MASK): the checks that read one only ask that it is set
    (`auth_token`, CKV_AWS_31). `after_unknown`: where a top-level unknown is noted."""
    values: dict[str, Any] = {}
    for key, value in inputs.items():
        if key in PULUMI_ONLY_INPUTS:
            continue
        name = attribute_name(context.resource_type, key, block)
        if value == UNKNOWN_MASK:
            # As Terraform writes a value known only after apply: absent, and true in
            # after_unknown. The resource's references then stand in for it.
            if after_unknown is not None:
                after_unknown[name or snake_case(key)] = True
            continue
        if name is None:
            context.unknown_inputs.append(f"{path}{key}")
            values[snake_case(key)] = value
        elif name in block["blocks"]:
            values[name] = _translate_nested(value, block["blocks"][name], context, f"{path}{key}.")
        else:
            values[name] = _translate_value(value, block["attributes"].get(name, "scalar"))
    return values


def _translate_nested(value: Any, nested: dict[str, Any], context: _Context, path: str) -> Any:
    items = value if isinstance(value, list) else [value]
    blocks = [translate_block(item, nested["block"], context, path) if isinstance(item, dict) else item
              for item in items if item is not None]
    if nested["nesting_mode"] == "single":
        return blocks[0] if blocks else None
    return blocks


def _translate_value(value: Any, kind: Any) -> Any:
    """An attribute's value by its kind: map keys (tags, labels) are data and stay as written;
    object keys are attribute names and are snake_cased."""
    if kind == "scalar" and isinstance(value, (dict, list)):
        return json.dumps(value)  # a policy given as an object: Terraform holds a JSON string
    if isinstance(kind, dict) and "object" in kind and isinstance(value, dict):
        return _translate_object(value, kind["object"])
    if isinstance(kind, dict) and "list_object" in kind:
        items = value if isinstance(value, list) else [value]
        return [_translate_object(item, kind["list_object"]) if isinstance(item, dict) else item
                for item in items]
    return value


def _translate_object(value: dict[str, Any], kinds: dict[str, Any]) -> dict[str, Any]:
    return {snake_case(k): _translate_value(v, kinds.get(snake_case(k), "scalar")) for k, v in value.items()}


# --------------------------------------------------------------------------- plans


@dataclass
class Translation:
    """One stack's plan as `terraform show -json`, with the way back to the Pulumi resources."""

    document: dict[str, Any]
    resources: dict[str, Registration]  # Terraform address -> Pulumi resource
    untranslated_types: list[str]  # tokens with no Terraform type in the schema file: left out
    unknown_inputs: dict[str, list[str]]  # address -> inputs the schema lacks, not allowed for

    def problems(self, stack: str) -> list[str]:
        lines = [f"not translated: {stack} {token}: no Terraform type in {SCHEMA_FILE.name}; rebuild it "
                 "(python -m tools.aws_scan --schema-from ...) and, if the type is not "
                 "aws_<module>_<resource>, add it to tools/aws_scan.TYPE_RENAMES"
                 for token in self.untranslated_types]
        lines += [f"not translated: {stack} {address}: {', '.join(inputs)} (no attribute in "
                  f"{SCHEMA_FILE.name}; a check reading it could pass unseen)"
                  for address, inputs in sorted(self.unknown_inputs.items())]
        return lines


def aws_resources(plan: Plan) -> list[Registration]:
    """The AWS resources of a plan (not components, not the provider itself)."""
    return [r for r in plan.resources if r.custom and r.type.startswith("aws:")]


def translate(plan: Plan, schema: dict[str, Any] | None = None) -> Translation:
    """`plan`'s AWS resources in the JSON of `terraform show -json`, as checkov reads it.
    Resources of a type the schema file lacks are left out and listed: the scan fails on them."""
    schema = load_schema() if schema is None else schema
    untranslated = untranslated_types((r.type for r in aws_resources(plan)), schema)
    resources = [r for r in aws_resources(plan) if r.type not in untranslated]
    taken: dict[str, set[str]] = {}
    addresses: dict[str, str] = {}  # urn -> address, for references
    for resource in resources:
        resource_type = terraform_type(resource.type)
        name = terraform_name(resource.name, taken.setdefault(resource_type, set()))
        addresses[resource.urn] = f"{resource_type}.{name}"
    planned, changes, configuration = [], [], []
    by_address: dict[str, Registration] = {}
    unknown_inputs: dict[str, list[str]] = {}
    for resource in resources:
        address = addresses[resource.urn]
        resource_type, name = address.split(".", 1)
        context = _Context(resource_type, address)
        after_unknown: dict[str, Any] = {}
        values = translate_block(resource.inputs, schema[resource_type], context, "", after_unknown)
        if context.unknown_inputs:
            unknown_inputs[address] = context.unknown_inputs
        by_address[address] = resource
        header = {"address": address, "mode": "managed", "type": resource_type, "name": name,
                  "provider_name": PROVIDER}
        planned.append({**header, "schema_version": 0, "values": values, "sensitive_values": {}})
        changes.append({**header, "change": {"actions": ["create"], "before": None, "after": values,
                                             "after_unknown": after_unknown}})
        configuration.append({"address": address, "mode": "managed", "type": resource_type, "name": name,
                              "provider_config_key": "aws",
                              "expressions": _references(resource, resource_type, schema[resource_type],
                                                         addresses)})
    document = {
        "format_version": "1.2",
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        # No `provider_config`: the Pulumi provider's settings are not translated, and checkov
        # would check an invented one (CKV_AWS_41, credentials in the provider block).
        "configuration": {"root_module": {"resources": configuration}},
    }
    return Translation(document=document, resources=by_address, untranslated_types=untranslated,
                       unknown_inputs=unknown_inputs)


def _references(resource: Registration, resource_type: str, block: dict[str, Any],
                addresses: dict[str, str]) -> dict[str, Any]:
    """Pulumi's property dependencies as Terraform's `expressions.<attribute>.references`: what
    an input was computed from (a flow log's `vpcId` from the VPC) is what a graph check
    follows. Terraform lists a reference both with and without its attribute."""
    expressions = {}
    for key, urns in resource.property_dependencies.items():
        targets = [addresses[urn] for urn in urns if urn in addresses]
        if targets:
            attribute = attribute_name(resource_type, key, block) or snake_case(key)
            expressions[attribute] = {"references": [ref for target in targets
                                                     for ref in (f"{target}.id", target)]}
    return expressions


# --------------------------------------------------------------------------- checkov


@dataclass(frozen=True)
class CheckResult:
    """One check on one resource, in Pulumi's terms (a failed one is a finding)."""

    stack: str
    check: str
    check_name: str
    type: str  # Pulumi type token
    name: str  # Pulumi resource name
    address: str  # Terraform address in the translation

    def __str__(self) -> str:
        return f"{self.stack}: {self.check} {self.check_name}: {self.type} {self.name}"


@dataclass(frozen=True)
class ScanReport:
    failed: list[CheckResult]
    passed: list[CheckResult]
    resources: int  # resources checkov read
    parsing_errors: list[str]


def run_checkov(directory: Path, translations: dict[str, Translation], *,
                checkov: Path = CHECKOV) -> ScanReport:
    """checkov's terraform_plan framework over `<directory>/<stack>.json` of each translation,
    offline, in one run (its graphs stay per file, so equal addresses of two stacks never meet)."""
    for stack, translation in translations.items():
        # Indented: checkov reports each resource's lines, and one line would be the whole plan.
        (directory / f"{stack}.json").write_text(json.dumps(translation.document, indent=1))
    return parse_report(checkov_json(directory, "terraform_plan", checkov=checkov), translations)


def parse_report(document: dict | list, translations: dict[str, Translation]) -> ScanReport:
    """checkov's JSON (an object, a list when several frameworks ran, or a bare summary when it
    found no resource at all), each result traced back to its Pulumi resource."""
    reports = document if isinstance(document, list) else [document]
    failed, passed, resources, errors = [], [], 0, []
    for report in reports:
        if report.get("check_type", "terraform_plan") != "terraform_plan":
            continue
        results = report.get("results", {})
        failed += [_result(entry, translations) for entry in results.get("failed_checks", [])]
        passed += [_result(entry, translations) for entry in results.get("passed_checks", [])]
        resources += report.get("summary", {}).get("resource_count", 0)
        errors += results.get("parsing_errors", [])
    return ScanReport(failed=failed, passed=passed, resources=resources, parsing_errors=errors)


def _result(entry: dict[str, Any], translations: dict[str, Translation]) -> CheckResult:
    stack = Path(entry["file_path"]).stem  # the file is <stack>.json
    resource = translations[stack].resources.get(entry["resource"])
    if resource is None:
        raise RuntimeError(f"checkov reported {entry['resource']} of {stack}, which the translation "
                           "does not hold")
    return CheckResult(stack=stack, check=entry["check_id"], check_name=entry.get("check_name", ""),
                       type=resource.type, name=resource.name, address=entry["resource"])


def scan(plans: dict[str, Plan], work_dir: Path) -> tuple[ScanReport, dict[str, Translation]]:
    """Translate every plan and run checkov once over all of them."""
    translations = {stack: translate(plan) for stack, plan in plans.items()}
    return run_checkov(work_dir, translations), translations


# --------------------------------------------------------------------------- exceptions


@dataclass(frozen=True)
class ScanException:
    """An entry of the exceptions file: a check that may fail on these resources, and why."""

    status: str  # "pending": a weakness, to be fixed; "accepted": not one here
    check: str
    type: str  # Pulumi type token
    names: tuple[str, ...]  # Pulumi resource names, or globs
    stacks: tuple[str, ...]  # empty: every stack
    text: str  # the planned fix (pending) or the reason (accepted)

    def covers(self, finding: CheckResult, names: Iterable[str] | None = None) -> bool:
        """Does this entry (or only `names` of it) cover `finding`?"""
        return (finding.check == self.check and finding.type == self.type
                and (not self.stacks or finding.stack in self.stacks)
                and any(fnmatch.fnmatchcase(finding.name, glob) for glob in (names or self.names)))

    def __str__(self) -> str:
        where = f" in {', '.join(self.stacks)}" if self.stacks else ""
        return f"{self.status} {self.check} on {self.type} {', '.join(self.names)}{where}"


# The text each status must carry.
TEXT_KEYS = {"pending": "fix", "accepted": "reason"}


def load_exceptions(path: Path = EXCEPTIONS_FILE) -> list[ScanException]:
    document = json.loads(path.read_text())
    return [ScanException(status=status, check=entry["check"], type=entry["type"],
                          names=tuple(entry["names"]), stacks=tuple(entry.get("stacks", ())),
                          text=entry.get(text_key, ""))
            for status, text_key in TEXT_KEYS.items() for entry in document.get(status, [])]


@dataclass(frozen=True)
class Verdict:
    """The findings against the exceptions file."""

    covered: list[tuple[CheckResult, ScanException]]
    unexplained: list[CheckResult]
    twice_covered: list[CheckResult]
    stale: list[str]  # a name of an entry that covers nothing in a stack
    without_text: list[ScanException]


def judge(findings: list[CheckResult], exceptions: list[ScanException], stacks: Iterable[str]) -> Verdict:
    """Which findings the exceptions cover, and which names of an entry cover nothing in a stack
    it names (in every scanned stack when it names none): each must still be needed."""
    covered, unexplained, twice = [], [], []
    for finding in findings:
        matching = [entry for entry in exceptions if entry.covers(finding)]
        if not matching:
            unexplained.append(finding)
        else:
            covered.append((finding, matching[0]))
            if len(matching) > 1:
                twice.append(finding)
    scanned = list(stacks)
    stale = [f"{entry.status} {entry.check} on {entry.type} {glob} in {stack}"
             for entry in exceptions
             for stack in (entry.stacks or scanned) if stack in scanned
             for glob in entry.names
             if not any(entry.covers(f, [glob]) for f in findings if f.stack == stack)]
    without_text = [entry for entry in exceptions if len(entry.text.strip()) < MIN_REASON_LENGTH]
    return Verdict(covered=covered, unexplained=unexplained, twice_covered=twice, stale=stale,
                   without_text=without_text)


def problems(report: ScanReport, translations: dict[str, Translation], verdict: Verdict) -> list[str]:
    """Everything that fails the scan, as lines for a person."""
    lines = [line for stack, translation in translations.items() for line in translation.problems(stack)]
    lines += [f"not parsed: {error}" for error in report.parsing_errors]
    expected = sum(len(t.resources) for t in translations.values())
    if report.resources != expected:
        lines.append(f"checkov read {report.resources} resources, expected {expected}")
    lines += [f"unexplained: {finding} ({finding.address}): fix it, or add it to {EXCEPTIONS_FILE.name}"
              for finding in verdict.unexplained]
    lines += [f"covered by more than one exception: {finding}" for finding in verdict.twice_covered]
    lines += [f"stale exception: {stale}: matches no finding; remove it from {EXCEPTIONS_FILE.name}"
              for stale in verdict.stale]
    lines += [f"exception without a {TEXT_KEYS[entry.status]} of {MIN_REASON_LENGTH}+ characters: {entry}"
              for entry in verdict.without_text]
    return lines


# --------------------------------------------------------------------------- command line


def schema_types(plans: Iterable[Plan]) -> set[str]:
    """The Terraform types the schema file must hold: those of `plans` and the tests' own."""
    return {terraform_type(r.type) for plan in plans for r in aws_resources(plan)} | set(TEST_ONLY_TYPES)


def _rebuild_schema(provider_schema_path: Path, version: str | None) -> int:
    """Rewrite the schema file for the committed stacks and the tests; `version`: the provider
    version the schema came from (default: the one the file names now)."""
    types = schema_types(run_stack(ROOT, stack) for stack in committed_stacks(ROOT))
    if version is None and SCHEMA_FILE.exists():
        version = json.loads(SCHEMA_FILE.read_text())["provider_version"]
    if not version:
        raise SystemExit("--provider-version is required: the schema output does not name it")
    write_schema_subset(json.loads(provider_schema_path.read_text()), types, version)
    print(f"{SCHEMA_FILE.relative_to(ROOT)}: {len(types)} types")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*")
    parser.add_argument("--schema-from", type=Path, metavar="SCHEMA.json",
                        help="output of `terraform providers schema -json`: rebuild the schema file")
    parser.add_argument("--provider-version", help="with --schema-from: the hashicorp/aws version it "
                                                   "came from (default: the one the schema file names)")
    args = parser.parse_args(argv)
    if args.schema_from:
        return _rebuild_schema(args.schema_from, args.provider_version)
    stacks = args.stacks or committed_stacks(ROOT)
    plans = {stack: run_stack(ROOT, stack) for stack in stacks}
    with tempfile.TemporaryDirectory(prefix="aws-scan-") as work_dir:
        report, translations = scan(plans, Path(work_dir))
    verdict = judge(report.failed, load_exceptions(), stacks)
    for finding, entry in sorted(verdict.covered, key=lambda pair: str(pair[0])):
        print(f"  {entry.status} {finding}: {entry.text}")
    failures = problems(report, translations, verdict)
    for line in failures:
        print(line, file=sys.stderr)
    pending = sum(1 for _, entry in verdict.covered if entry.status == "pending")
    print(f"checkov terraform_plan: {', '.join(stacks)}: {report.resources} resources, {len(report.passed)} "
          f"passed, {pending} pending a fix, {len(verdict.covered) - pending} accepted, "
          f"{len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
