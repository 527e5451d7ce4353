"""Every custom metric the system emits, listed once (ARCHITECTURE §6).

Publishers, the app's operations panel and the CloudFormation dashboard and alarms use only
these names; a test holds the template to this list.
"""

from __future__ import annotations

from dataclasses import dataclass

ENVIRONMENT = "Environment"
TASK = "Task"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    dimensions: tuple[str, ...] = (ENVIRONMENT,)
    description: str = ""


_SPECS = [
    MetricSpec("AnalysisCount", "Count", description="drawings analysed"),
    MetricSpec("AnomalyCount", "Count", description="analyses flagged as anomalous"),
    MetricSpec("ProcessingTime", "Milliseconds", description="analysis time, as values/counts"),
    MetricSpec("DatabaseSizeBytes", "Bytes", description="size of the app database"),
    MetricSpec("BackupAgeSeconds", "Seconds", description="age of the newest backup object"),
    MetricSpec("BackupSizeBytes", "Bytes", description="size of the backup just taken"),
    MetricSpec("BackupDurationSeconds", "Seconds", description="time to take one backup"),
    MetricSpec("RestoreDrillSucceeded", "Count", description="restore drills that passed"),
    MetricSpec("RestoreDrillFailed", "Count", description="restore drills that failed"),
    MetricSpec("LifecycleViolations", "Count", description="storage policy findings"),
    MetricSpec("BudgetActualPercent", "Percent", description="actual spend / budget limit"),
    MetricSpec("BudgetForecastPercent", "Percent", description="forecast spend / budget limit"),
    MetricSpec("TaskSucceeded", "Count", (ENVIRONMENT, TASK), "task runs that did not fail"),
    MetricSpec("TaskFailed", "Count", (ENVIRONMENT, TASK), "task runs that failed"),
    MetricSpec("TaskDurationSeconds", "Seconds", (ENVIRONMENT, TASK), "task run time"),
]

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


def spec(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"{name}: not a metric of the catalog (opsd/metric_catalog.py)") from None
