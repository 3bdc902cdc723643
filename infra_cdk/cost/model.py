"""The monthly cost of a synthesized template: the idle floor and the per-use cost, resource by resource.

Pure: a CloudFormation template (a dict), a traffic :class:`Profile` and a :class:`PriceTable` in, an
:class:`Estimate` out. Nothing here imports the CDK, so an estimate takes milliseconds and the unit
tests build their templates by hand.

idle floor
    What an *empty* deployment bills with zero requests: instance-hours of minimum capacity, search
    nodes and their volumes, the web ACL and its rules, alarms, dashboards, secrets, keys, NAT
    gateways, interface endpoints, Serverless OCU minimums, SQS long polls by Lambda.
per-use
    What the profile's traffic and stored data add: requests, GB-seconds, instance-hours above the
    floor, storage.

A resource type with no price model is listed as *unpriced*, never dropped; a type known to cost
nothing is counted under ``no_charge`` (the list, with reasons, is in ``prices.json``).

Examples
--------
>>> cost = estimate(template, load_profile("dev"), load_prices())
>>> cost.idle_monthly_usd, cost.monthly_usd  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

HERE = Path(__file__).resolve().parent
PRICES_FILE = HERE / "prices.json"
PROFILES_FILE = HERE / "profiles.json"
GIB = 1024 * 1024  # KB per GB, for log volumes
NEVER_EXPIRE_DAYS = 365  # stored logs counted for a log group without retention

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class CostModelError(Exception):
    """The estimate cannot be made."""


class ProfileError(CostModelError):
    """A traffic profile is missing or holds a bad value."""


class PriceTableError(CostModelError):
    """``prices.json`` is malformed."""


class _Unpriced(Exception):
    """This resource cannot be priced; the message says why."""


# --- the traffic profile -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FunctionUse(_Strict):
    """Invocations of the Lambda functions whose logical id contains the key."""

    per: Literal["request", "document", "day"] = "request"
    calls: NonNegative = 1
    duration_ms: NonNegative


class EndpointUse(_Strict):
    """Calls to the SageMaker endpoints whose logical id contains the key.

    ``ms_per_call`` is how long a call runs: the billed duration of a serverless call, or how long a
    call holds an instance-backed copy (read against a concurrent-requests-per-copy scaling
    target). ``tokens_per_s_per_copy`` (prompt + completion tokens one copy sustains under load)
    bounds the copies by throughput. Copies run through ``busy_hours_per_day``; scaling from zero,
    each of ``wakes_per_day`` adds ``scale_in_tail_minutes`` before the copy is removed.
    """

    calls_per_request: NonNegative = 0
    calls_per_document: NonNegative = 0
    ms_per_call: NonNegative = 0
    tokens_per_s_per_copy: Positive | None = None
    busy_hours_per_day: Annotated[float, Field(ge=0, le=24)] = 0
    wakes_per_day: NonNegative = 0
    scale_in_tail_minutes: NonNegative = 0
    copies_per_instance: Annotated[int, Field(ge=1)] = 1


class TableUse(_Strict):
    reads_per_request: NonNegative = 0
    writes_per_request: NonNegative = 0
    writes_per_document: NonNegative = 0
    gb: NonNegative = 0


class BucketUse(_Strict):
    holds_documents: bool = False
    gb: NonNegative = 0
    puts_per_request: NonNegative = 0
    puts_per_document: NonNegative = 0
    gets_per_document: NonNegative = 0


class QueueUse(_Strict):
    requests_per_document: NonNegative = 0


class LogUse(_Strict):
    kb_per_request: NonNegative = 0
    kb_per_document: NonNegative = 0


class Profile(_Strict):
    """A named traffic profile. The keys of the per-resource maps are matched as substrings of
    logical ids, first key first; a resource no key matches gets no traffic."""

    description: str = ""
    requests_per_day: NonNegative
    prompt_tokens_per_request: NonNegative
    completion_tokens_per_request: NonNegative
    documents_per_month: NonNegative
    gb_stored: NonNegative
    index_gb: NonNegative = 0
    web_views_per_day: NonNegative = 0
    kb_per_view: NonNegative = 0
    requests_per_view: NonNegative = 0
    lambda_sqs_pollers: Annotated[int, Field(ge=0)] = 5
    sqs_long_poll_s: Annotated[float, Field(gt=0, le=20)] = 20
    apply_always_free_tier: bool = True
    functions: dict[str, FunctionUse] = Field(default_factory=dict)
    endpoints: dict[str, EndpointUse] = Field(default_factory=dict)
    tables: dict[str, TableUse] = Field(default_factory=dict)
    buckets: dict[str, BucketUse] = Field(default_factory=dict)
    queues: dict[str, QueueUse] = Field(default_factory=dict)
    logs: dict[str, LogUse] = Field(default_factory=dict)
    why: dict[str, str] = Field(default_factory=dict)


def parse_profile(data: Mapping[str, Any], *, name: str = "profile") -> Profile:
    """Validate one profile object; a bad value raises :class:`ProfileError` naming every field."""
    try:
        return Profile.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(root)'}: {e['msg']}" for e in error.errors()
        )
        raise ProfileError(f"{name}: {problems}") from None


def load_profile(stage: str, path: Path = PROFILES_FILE) -> Profile:
    """The stage's profile from ``profiles.json`` (an object of profiles by stage)."""
    profiles = _read_json(path, ProfileError)
    if stage not in profiles:
        raise ProfileError(f"no profile {stage!r} in {path} (have: {', '.join(sorted(profiles))})")
    return parse_profile(profiles[stage], name=f"{path.name}:{stage}")


def load_profile_file(path: Path) -> Profile:
    """A file that holds one profile object (``strata cost --profile FILE``)."""
    return parse_profile(_read_json(path, ProfileError), name=str(path))


# --- the price table -----------------------------------------------------------------------------

_PRICE_FIELDS = ("value", "unit", "date", "region", "source", "confirmed")


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by key (``service.dimension[.type]``) and the resource types that cost nothing."""

    prices: Mapping[str, Mapping[str, Any]]
    no_charge: Mapping[str, str]
    hours_per_month: float = 730
    region: str = "us-east-1"

    def value(self, key: str) -> float:
        if key not in self.prices:
            raise _Unpriced(f"no price for {key} in prices.json")
        return float(self.prices[key]["value"])

    def free_per_month(self, key: str) -> float:
        return float(self.prices.get(key, {}).get("free_per_month", 0))

    @property
    def days_per_month(self) -> float:
        return self.hours_per_month / 24


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    data = _read_json(path, PriceTableError)
    prices = data.get("prices", {})
    for key, entry in prices.items():
        missing = [name for name in _PRICE_FIELDS if name not in entry]
        if missing:
            raise PriceTableError(f"{path}: price {key} lacks {', '.join(missing)}")
    return PriceTable(
        prices=prices,
        no_charge=data.get("no_charge", {}),
        hours_per_month=float(data.get("hours_per_month", 730)),
        region=str(data.get("region", "us-east-1")),
    )


# --- the estimate --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceCost:
    logical_id: str
    type: str
    idle_monthly_usd: float
    usage_monthly_usd: float
    basis: str


@dataclass(frozen=True, slots=True)
class Unpriced:
    logical_id: str
    type: str
    reason: str


@dataclass(frozen=True, slots=True)
class Estimate:
    resources: list[ResourceCost]
    unpriced: list[Unpriced]
    no_charge: dict[str, int]
    assumptions: list[str]
    always_on: bool = False

    @property
    def idle_monthly_usd(self) -> float:
        return sum(r.idle_monthly_usd for r in self.resources)

    @property
    def usage_monthly_usd(self) -> float:
        return sum(r.usage_monthly_usd for r in self.resources)

    @property
    def monthly_usd(self) -> float:
        return self.idle_monthly_usd + self.usage_monthly_usd

    def to_json(self) -> dict[str, Any]:
        return {
            "idle_monthly_usd": round(self.idle_monthly_usd, 2),
            "usage_monthly_usd": round(self.usage_monthly_usd, 2),
            "monthly_usd": round(self.monthly_usd, 2),
            "always_on": self.always_on,
            "complete": not self.unpriced,
            "resources": [
                {
                    "logical_id": r.logical_id,
                    "type": r.type,
                    "idle_monthly_usd": round(r.idle_monthly_usd, 2),
                    "usage_monthly_usd": round(r.usage_monthly_usd, 2),
                    "basis": r.basis,
                }
                for r in self.resources
            ],
            "unpriced": [{"logical_id": u.logical_id, "type": u.type, "reason": u.reason} for u in self.unpriced],
            "no_charge": self.no_charge,
            "assumptions": self.assumptions,
        }


def estimate(template: Mapping[str, Any], profile: Profile, prices: PriceTable, *, always_on: bool = False) -> Estimate:
    """Price every resource of ``template`` under ``profile``.

    ``always_on`` pins every autoscaled instance-backed endpoint at its maximum instances around
    the clock: what a deployment without autoscaling, sized for the same peak, would pay.
    Serverless endpoints stay serverless.
    """
    ctx = _Context(template.get("Resources", {}), profile, prices, always_on)
    resources: list[ResourceCost] = []
    unpriced: list[Unpriced] = []
    no_charge: dict[str, int] = {}
    for logical_id, resource in ctx.resources.items():
        kind = resource.get("Type", "?")
        handler = _HANDLERS.get(kind)
        if handler is None and kind in prices.no_charge:
            no_charge[kind] = no_charge.get(kind, 0) + 1
            continue
        if handler is None:
            unpriced.append(Unpriced(logical_id, kind, "no price model for this resource type"))
            continue
        try:
            cost = handler(ctx, logical_id, resource.get("Properties", {}))
        except _Unpriced as why:
            unpriced.append(Unpriced(logical_id, kind, str(why)))
            continue
        except (TypeError, ValueError, KeyError, IndexError) as why:  # an intrinsic where a literal is priced
            unpriced.append(Unpriced(logical_id, kind, f"a property it is priced by is not a literal ({why})"))
            continue
        if cost is None:
            no_charge[kind] = no_charge.get(kind, 0) + 1
        else:
            idle, usage, basis = cost
            resources.append(ResourceCost(logical_id, kind, idle, usage, basis))
    resources.sort(key=lambda r: (-(r.idle_monthly_usd + r.usage_monthly_usd), r.logical_id))
    return Estimate(resources, unpriced, dict(sorted(no_charge.items())), ctx.assumptions(), always_on)


# --- pricing each resource type ------------------------------------------------------------------

_Cost = tuple[float, float, str] | None  # idle, usage, basis; None = no charge


@dataclass
class _Context:
    resources: Mapping[str, Any]
    profile: Profile
    prices: PriceTable
    always_on: bool
    _free_left: dict[str, float] = field(default_factory=dict)
    _notes: list[str] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return self.prices.hours_per_month

    @property
    def requests_per_month(self) -> float:
        return self.profile.requests_per_day * self.prices.days_per_month

    def use(self, table: Mapping[str, Any], logical_id: str) -> Any:
        return next((use for key, use in table.items() if key in logical_id), None)

    def billable(self, key: str, units: float) -> float:
        """Units left to pay after the account's always-free allowance (shared in template order)."""
        if not self.profile.apply_always_free_tier:
            return units
        left = self._free_left.setdefault(key, self.prices.free_per_month(key))
        free = min(left, units)
        self._free_left[key] = left - free
        return units - free

    def note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.append(text)

    def assumptions(self) -> list[str]:
        p = self.profile
        told = [
            f"{p.requests_per_day:g} requests/day, {self.prices.days_per_month:.2f} days/month "
            f"({self.hours:g} h); {p.prompt_tokens_per_request:g} prompt + "
            f"{p.completion_tokens_per_request:g} completion tokens per request",
            f"{p.documents_per_month:g} documents ingested/month; {p.gb_stored:g} GB of documents stored; "
            f"{p.index_gb:g} GB of search index",
            "idle floor = an empty deployment (no stored data) serving no requests",
            f"{self.prices.region} on-demand list prices from prices.json; no Savings Plans, reserved capacity or "
            f"12-month free tier; always-free allowances (10 alarms, 3 dashboards) "
            f"{'applied' if p.apply_always_free_tier else 'not applied'}",
        ]
        return told + self._notes + [f"{name}: {text}" for name, text in p.why.items()]


def _refs(value: Any) -> tuple[set[str], list[str]]:
    """Logical ids a property value references (Ref, Fn::GetAtt) and the literal strings in it."""
    ids: set[str] = set()
    strings: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "Ref" in node and isinstance(node["Ref"], str):
                ids.add(node["Ref"])
            elif "Fn::GetAtt" in node:
                target = node["Fn::GetAtt"]
                ids.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
            else:
                for item in node.values():
                    walk(item)

    walk(value)
    return ids, strings


def _points_at(value: Any, logical_id: str, name: Any) -> bool:
    """Whether ``value`` names the resource ``logical_id`` (by reference, or by its literal name)."""
    ids, strings = _refs(value)
    return logical_id in ids or (isinstance(name, str) and any(name in s for s in strings))


def _of_type(ctx: _Context, kind: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for logical_id, resource in ctx.resources.items():
        if resource.get("Type") == kind:
            yield logical_id, resource.get("Properties", {})


def _scalable_target(ctx: _Context, logical_id: str, name: Any, prefix: str) -> tuple[str, Mapping[str, Any]] | None:
    for target_id, props in _of_type(ctx, "AWS::ApplicationAutoScaling::ScalableTarget"):
        resource_id = props.get("ResourceId")
        _, strings = _refs(resource_id)
        if any(prefix in s for s in strings) and _points_at(resource_id, logical_id, name):
            return target_id, props
    return None


def _concurrency_target(ctx: _Context, target_id: str) -> float | None:
    """The concurrent requests per copy a target-tracking policy on ``target_id`` aims at."""
    for _, props in _of_type(ctx, "AWS::ApplicationAutoScaling::ScalingPolicy"):
        tracking = props.get("TargetTrackingScalingPolicyConfiguration") or {}
        metric = (tracking.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType", "")
        if target_id in _refs(props.get("ScalingTargetId"))[0] and "ConcurrentRequestsPerCopy" in metric:
            return float(tracking["TargetValue"])
    return None


def _sagemaker_endpoint(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    config_ids, _ = _refs(props.get("EndpointConfigName"))
    configs = [ctx.resources[i] for i in config_ids if i in ctx.resources]
    if not configs:
        raise _Unpriced("its endpoint config is not in this template")
    use = ctx.use(ctx.profile.endpoints, logical_id) or EndpointUse()
    calls_per_day = (
        use.calls_per_request * ctx.profile.requests_per_day
        + use.calls_per_document * ctx.profile.documents_per_month / ctx.prices.days_per_month
    )
    total = [0.0, 0.0]
    bases = []
    for variant in configs[0].get("Properties", {}).get("ProductionVariants", []):
        if "ServerlessConfig" in variant:
            idle, usage, basis = _serverless_variant(ctx, variant["ServerlessConfig"], use, calls_per_day)
        else:
            idle, usage, basis = _instance_variant(ctx, logical_id, props, variant, use, calls_per_day)
        total[0] += idle
        total[1] += usage
        bases.append(basis)
    return total[0], total[1], "; ".join(bases)


def _serverless_variant(
    ctx: _Context, config: Mapping[str, Any], use: EndpointUse, calls_per_day: float
) -> tuple[float, float, str]:
    if config.get("ProvisionedConcurrency"):
        raise _Unpriced("provisioned concurrency on serverless inference has no price in prices.json")
    memory_gb = float(config.get("MemorySizeInMB", 1024)) / 1024
    rate = ctx.prices.value("sagemaker.serverless_gb_second")
    seconds = calls_per_day * ctx.prices.days_per_month * use.ms_per_call / 1000
    usage = seconds * memory_gb * rate
    basis = f"serverless {memory_gb:g} GB × {seconds:,.0f} s/month × ${rate}/GB-s, nothing while idle"
    return 0.0, usage, basis


def _instance_variant(
    ctx: _Context,
    logical_id: str,
    endpoint: Mapping[str, Any],
    variant: Mapping[str, Any],
    use: EndpointUse,
    calls_per_day: float,
) -> tuple[float, float, str]:
    instance_type = variant.get("InstanceType")
    if not isinstance(instance_type, str):
        raise _Unpriced("a production variant has neither ServerlessConfig nor a literal InstanceType")
    rate = ctx.prices.value(f"sagemaker.instance_hour.{instance_type}")
    bounds = _instance_bounds(ctx, logical_id, endpoint, variant, use)
    floor, cap = (bounds.cap, bounds.cap) if ctx.always_on else (bounds.floor, bounds.cap)
    basis = f"{instance_type} ${rate}/h × {floor:g} min instance(s) × {ctx.hours:g} h"
    if cap <= floor:
        pinned = bounds.floor >= bounds.cap
        return floor * ctx.hours * rate, 0.0, basis + (" (pinned)" if pinned else " (always on, at its max)")

    busy_instances = _busy_instances(ctx, use, calls_per_day, bounds.concurrency_target)
    capped = busy_instances > cap
    busy_instances = min(busy_instances, cap)
    if floor:
        hours = floor * 24 + max(0.0, busy_instances - floor) * use.busy_hours_per_day
    else:
        hours = busy_instances * use.busy_hours_per_day + use.wakes_per_day * use.scale_in_tail_minutes / 60
    ctx.note(
        "autoscaled instances while busy = min(max, max(1, calls/day × tokens/call ÷ tokens/s per copy ÷ "
        "busy seconds, calls per busy second × seconds per call ÷ the target concurrent requests per copy)) "
        "÷ copies per instance; instance-hours/day = min × 24 + (busy instances − min) × busy hours, or, "
        "scaling to zero, busy instances × busy hours + wakes/day × the scale-in tail"
    )
    extra = hours - floor * 24
    basis += f"; + {extra:.1f} instance-h/day from traffic ({busy_instances:.2f} busy, max {cap:g})"
    if capped:
        basis += " CAPPED: the traffic needs more than the max instances"
    return floor * ctx.hours * rate, extra * ctx.prices.days_per_month * rate, basis


def _busy_instances(ctx: _Context, use: EndpointUse, calls_per_day: float, target: float | None) -> float:
    """Average instances the autoscaler holds during busy hours: bound by throughput, and by the
    concurrency target when the scaling policy tracks concurrent requests per copy."""
    busy_s = use.busy_hours_per_day * 3600
    if not calls_per_day or not busy_s:
        return 0.0
    copies = 1.0
    if use.tokens_per_s_per_copy:
        tokens = ctx.profile.prompt_tokens_per_request + ctx.profile.completion_tokens_per_request
        copies = max(copies, calls_per_day * tokens / use.tokens_per_s_per_copy / busy_s)
    if target:
        copies = max(copies, calls_per_day / busy_s * use.ms_per_call / 1000 / target)
    return copies / use.copies_per_instance


@dataclass(frozen=True, slots=True)
class _Bounds:
    floor: float
    cap: float
    concurrency_target: float | None


def _instance_bounds(
    ctx: _Context, logical_id: str, endpoint: Mapping[str, Any], variant: Mapping[str, Any], use: EndpointUse
) -> _Bounds:
    """Minimum and maximum instances of one variant, from managed instance scaling, a scalable
    target on the variant, and the copies of the inference components placed on the endpoint."""
    initial = float(variant.get("InitialInstanceCount", 1))
    floor, cap = initial, initial
    managed = variant.get("ManagedInstanceScaling") or {}
    if managed.get("Status") == "ENABLED":
        floor = float(managed.get("MinInstanceCount", 1))
        cap = float(managed.get("MaxInstanceCount", floor))
    name = endpoint.get("EndpointName")
    target_id: str | None = None
    found = _scalable_target(ctx, logical_id, name, "variant/")
    if found:
        target_id, target = found
        floor, cap = float(target.get("MinCapacity", floor)), float(target.get("MaxCapacity", cap))
    components = [
        (component_id, component)
        for component_id, component in _of_type(ctx, "AWS::SageMaker::InferenceComponent")
        if _points_at(component.get("EndpointName"), logical_id, name)
    ]
    if components:
        min_copies = max_copies = 0.0
        for component_id, component in components:
            copies = float((component.get("RuntimeConfig") or {}).get("CopyCount", 1))
            found = _scalable_target(ctx, component_id, component.get("InferenceComponentName"), "inference-component/")
            if found:
                target_id, target = found
            min_copies += float(target.get("MinCapacity", copies)) if found else copies
            max_copies += float(target.get("MaxCapacity", copies)) if found else copies
        floor = max(floor, math.ceil(min_copies / use.copies_per_instance))
        cap = min(cap, math.ceil(max_copies / use.copies_per_instance))
    concurrency = _concurrency_target(ctx, target_id) if target_id else None
    return _Bounds(floor, max(cap, floor), concurrency)


def _opensearch_domain(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    cluster = props.get("ClusterConfig") or {}
    nodes = float(cluster.get("InstanceCount", 1))
    node_type = cluster.get("InstanceType")
    if not isinstance(node_type, str):
        raise _Unpriced("ClusterConfig.InstanceType is not a literal")
    idle = nodes * ctx.hours * ctx.prices.value(f"opensearch.instance_hour.{node_type}")
    parts = [f"{nodes:g} × {node_type} × {ctx.hours:g} h"]
    if cluster.get("DedicatedMasterEnabled"):
        masters, master_type = float(cluster.get("DedicatedMasterCount", 3)), cluster.get("DedicatedMasterType")
        idle += masters * ctx.hours * ctx.prices.value(f"opensearch.instance_hour.{master_type}")
        parts.append(f"{masters:g} × {master_type} masters")
    if cluster.get("WarmEnabled"):
        warm, warm_type = float(cluster.get("WarmCount", 2)), cluster.get("WarmType")
        idle += warm * ctx.hours * ctx.prices.value(f"opensearch.instance_hour.{warm_type}")
        parts.append(f"{warm:g} × {warm_type} warm")
    ebs = props.get("EBSOptions") or {}
    if ebs.get("EBSEnabled"):
        volume_type, size = ebs.get("VolumeType", "gp2"), float(ebs.get("VolumeSize", 10))
        idle += nodes * size * ctx.prices.value(f"opensearch.{volume_type}_gb_month")
        parts.append(f"{nodes:g} × {size:g} GB {volume_type}")
        if float(ebs.get("Iops", 3000)) > 3000 or float(ebs.get("Throughput", 125)) > 125:
            parts.append("gp3 IOPS/throughput above the free baseline NOT priced")
    return idle, 0.0, " + ".join(parts)


def _opensearch_collection(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    redundant = props.get("StandbyReplicas", "ENABLED") != "DISABLED"
    ocus = 2.0 if redundant else 1.0  # 0.5 OCU indexing + 0.5 search, doubled by standby replicas
    rate = ctx.prices.value("opensearch.serverless_ocu_hour")
    storage = ctx.profile.index_gb * ctx.prices.value("opensearch.serverless_storage_gb_month")
    ctx.note("OpenSearch Serverless: the OCU minimum is shared by the collections of one account and KMS key")
    basis = f"{ocus:g} OCU minimum ({'standby replicas' if redundant else 'no standby'}) × ${rate}/h"
    return ocus * ctx.hours * rate, storage, basis + f"; {ctx.profile.index_gb:g} GB stored"


def _lambda_function(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    memory_gb = float(props.get("MemorySize", 128)) / 1024
    architecture = (props.get("Architectures") or ["x86_64"])[0]
    use: FunctionUse | None = ctx.use(ctx.profile.functions, logical_id)
    if use is None:
        return 0.0, 0.0, f"{memory_gb * 1024:g} MB {architecture}; no traffic in the profile"
    per = {
        "request": ctx.requests_per_month,
        "document": ctx.profile.documents_per_month,
        "day": ctx.prices.days_per_month,
    }[use.per]
    calls = use.calls * per
    rate = ctx.prices.value(f"lambda.gb_second.{architecture}")
    usage = calls * (ctx.prices.value("lambda.request") + use.duration_ms / 1000 * memory_gb * rate)
    basis = f"{calls:,.0f} calls × ({use.duration_ms:g} ms × {memory_gb * 1024:g} MB {architecture}) + requests"
    return 0.0, usage, basis


def _event_source_mapping(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    ids, _ = _refs(props.get("EventSourceArn"))
    if not any(ctx.resources.get(i, {}).get("Type") == "AWS::SQS::Queue" for i in ids):
        raise _Unpriced("only SQS event sources are priced")
    polls = ctx.profile.lambda_sqs_pollers * 3600 / ctx.profile.sqs_long_poll_s * ctx.hours
    idle = polls * ctx.prices.value("sqs.request")
    basis = f"{ctx.profile.lambda_sqs_pollers} Lambda pollers × one {ctx.profile.sqs_long_poll_s:g} s long poll each"
    return idle, 0.0, basis


def _sqs_queue(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    use: QueueUse = ctx.use(ctx.profile.queues, logical_id) or QueueUse()
    requests = use.requests_per_document * ctx.profile.documents_per_month
    return 0.0, requests * ctx.prices.value("sqs.request"), f"{requests:,.0f} requests/month"


def _dynamodb_table(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    use: TableUse = ctx.use(ctx.profile.tables, logical_id) or TableUse()
    storage = use.gb * ctx.prices.value("dynamodb.storage_gb_month")
    if props.get("BillingMode", "PROVISIONED") != "PAY_PER_REQUEST":
        throughputs = [props.get("ProvisionedThroughput") or {}] + [
            index.get("ProvisionedThroughput") or {} for index in props.get("GlobalSecondaryIndexes", [])
        ]
        rcu = sum(float(t.get("ReadCapacityUnits", 0)) for t in throughputs)
        wcu = sum(float(t.get("WriteCapacityUnits", 0)) for t in throughputs)
        idle = ctx.hours * (rcu * ctx.prices.value("dynamodb.rcu_hour") + wcu * ctx.prices.value("dynamodb.wcu_hour"))
        return idle, storage, f"provisioned {rcu:g} RCU + {wcu:g} WCU × {ctx.hours:g} h; {use.gb:g} GB"
    reads = use.reads_per_request * ctx.requests_per_month
    writes = use.writes_per_request * ctx.requests_per_month + use.writes_per_document * ctx.profile.documents_per_month
    usage = (
        reads * ctx.prices.value("dynamodb.read_request_unit")
        + writes * ctx.prices.value("dynamodb.write_request_unit")
        + storage
    )
    return 0.0, usage, f"on demand: {reads:,.0f} reads + {writes:,.0f} writes/month; {use.gb:g} GB"


def _s3_bucket(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    use: BucketUse = ctx.use(ctx.profile.buckets, logical_id) or BucketUse()
    gb = ctx.profile.gb_stored if use.holds_documents else use.gb
    puts = use.puts_per_request * ctx.requests_per_month + use.puts_per_document * ctx.profile.documents_per_month
    gets = use.gets_per_document * ctx.profile.documents_per_month
    usage = (
        gb * ctx.prices.value("s3.standard_gb_month")
        + puts * ctx.prices.value("s3.put_request")
        + gets * ctx.prices.value("s3.get_request")
    )
    return 0.0, usage, f"{gb:g} GB Standard; {puts:,.0f} PUT + {gets:,.0f} GET/month"


def _log_group(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    use: LogUse = ctx.use(ctx.profile.logs, logical_id) or LogUse()
    kb = use.kb_per_request * ctx.requests_per_month + use.kb_per_document * ctx.profile.documents_per_month
    ingested_gb = kb / GIB
    days = float(props.get("RetentionInDays", NEVER_EXPIRE_DAYS))
    stored_gb = ingested_gb / ctx.prices.days_per_month * days
    usage = ingested_gb * ctx.prices.value("logs.ingest_gb") + stored_gb * ctx.prices.value("logs.storage_gb_month")
    basis = f"{ingested_gb:.2f} GB ingested/month, {stored_gb:.2f} GB kept ({days:g} days)"
    return 0.0, usage, basis


def _rest_api(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    rate = ctx.prices.value("apigateway.rest_request")
    return 0.0, ctx.requests_per_month * rate, f"{ctx.requests_per_month:,.0f} requests × ${rate * 1e6:g}/1M"


def _api_stage(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    if props.get("CacheClusterEnabled"):
        raise _Unpriced("the stage's cache cluster has no price in prices.json")
    return None


_PAID_RULE_GROUPS = ("AWSManagedRulesBotControlRuleSet", "AWSManagedRulesATPRuleSet", "AWSManagedRulesACFPRuleSet")


def _web_acl(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    rules = props.get("Rules") or []
    _, strings = _refs(rules)
    paid = sorted({s for s in strings if s in _PAID_RULE_GROUPS})
    if paid:
        raise _Unpriced(f"{', '.join(paid)} carry subscription and request fees not in prices.json")
    idle = ctx.prices.value("waf.web_acl_month") + len(rules) * ctx.prices.value("waf.rule_month")
    requests = ctx.requests_per_month
    if props.get("Scope") == "CLOUDFRONT":
        requests = ctx.profile.web_views_per_day * ctx.profile.requests_per_view * ctx.prices.days_per_month
    usage = requests * ctx.prices.value("waf.request")
    return idle, usage, f"web ACL + {len(rules)} rules; {requests:,.0f} requests inspected/month"


def _alarm(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    metrics = props.get("Metrics")
    count = float(sum(1 for m in metrics if "MetricStat" in m) or 1) if metrics else 1.0
    high_resolution = float(props.get("Period", 60)) < 60
    key = "cloudwatch.high_resolution_alarm_month" if high_resolution else "cloudwatch.alarm_month"
    paid = ctx.billable(key, count)
    basis = f"{count:g} alarm metric(s), {count - paid:g} within the always-free 10"
    return paid * ctx.prices.value(key), 0.0, basis


def _composite_alarm(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    return ctx.prices.value("cloudwatch.composite_alarm_month"), 0.0, "composite alarm"


def _dashboard(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    paid = ctx.billable("cloudwatch.dashboard_month", 1)
    basis = "dashboard" + ("" if paid else " within the always-free 3")
    return paid * ctx.prices.value("cloudwatch.dashboard_month"), 0.0, basis


def _scaling_policy(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    tracking = props.get("TargetTrackingScalingPolicyConfiguration")
    if tracking is None:
        return None  # step scaling fires an alarm the template declares (priced there)
    _, strings = _refs(tracking)
    high_resolution = any("HighResolution" in s for s in strings)
    key = "cloudwatch.high_resolution_alarm_month" if high_resolution else "cloudwatch.alarm_month"
    paid = ctx.billable(key, 2)
    kind = "high-resolution " if high_resolution else ""
    basis = f"target tracking creates 2 {kind}alarms (high, low) outside the template, {2 - paid:g} of them free"
    return paid * ctx.prices.value(key), 0.0, basis


def _fixed(key: str, basis: str) -> Callable[[_Context, str, Mapping[str, Any]], _Cost]:
    def price(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
        value = ctx.prices.value(key)
        per_hour = key.endswith("_hour")
        return (value * ctx.hours if per_hour else value), 0.0, basis

    return price


def _vpc_endpoint(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    if props.get("VpcEndpointType", "Gateway") == "Gateway":
        return None
    azs = float(len(props.get("SubnetIds") or [None]))
    rate = ctx.prices.value("vpc.interface_endpoint_hour")
    return azs * ctx.hours * rate, 0.0, f"interface endpoint in {azs:g} AZ(s) × ${rate}/h (+ $0.01/GB)"


def _sns_topic(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    return 0.0, 0.0, f"${ctx.prices.value('sns.publish') * 1e6:g} per 1M publishes; alarm notifications only"


def _distribution(ctx: _Context, logical_id: str, props: Mapping[str, Any]) -> _Cost:
    views = ctx.profile.web_views_per_day * ctx.prices.days_per_month
    gb = views * ctx.profile.kb_per_view / GIB
    requests = views * ctx.profile.requests_per_view
    usage = gb * ctx.prices.value("cloudfront.gb_out") + requests * ctx.prices.value("cloudfront.https_request")
    return 0.0, usage, f"{views:,.0f} page views: {gb:.1f} GB out, {requests:,.0f} HTTPS requests/month"


_HANDLERS: dict[str, Callable[[_Context, str, Mapping[str, Any]], _Cost]] = {
    "AWS::SageMaker::Endpoint": _sagemaker_endpoint,
    "AWS::OpenSearchService::Domain": _opensearch_domain,
    "AWS::OpenSearchServerless::Collection": _opensearch_collection,
    "AWS::Lambda::Function": _lambda_function,
    "AWS::Lambda::EventSourceMapping": _event_source_mapping,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::ApiGateway::RestApi": _rest_api,
    "AWS::ApiGateway::Stage": _api_stage,
    "AWS::WAFv2::WebACL": _web_acl,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::CompositeAlarm": _composite_alarm,
    "AWS::CloudWatch::Dashboard": _dashboard,
    "AWS::ApplicationAutoScaling::ScalingPolicy": _scaling_policy,
    "AWS::SecretsManager::Secret": _fixed("secretsmanager.secret_month", "secret-month"),
    "AWS::KMS::Key": _fixed("kms.key_month", "key-month (each of the first two rotations adds $1/month)"),
    "AWS::EC2::NatGateway": _fixed("vpc.nat_gateway_hour", "NAT gateway-hours (+ $0.045/GB processed)"),
    "AWS::EC2::EIP": _fixed("vpc.public_ipv4_hour", "public IPv4 address-hours"),
    "AWS::EC2::VPCEndpoint": _vpc_endpoint,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::CloudFront::Distribution": _distribution,
}


def _read_json(path: Path, error: type[CostModelError]) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as why:
        raise error(f"cannot read {path}: {why}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object")
    return data
