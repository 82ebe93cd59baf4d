"""Reporting over the hourly totals: roadmap windows, budgets and the year-end forecast.

Shared by the HTTP API and the alert rules, so "today versus budget" means the same
thing on a dashboard, in an API answer and in an alert.
"""

from core.reporting.roadmap import (
    Forecast,
    RoadmapStatus,
    SiteRoadmap,
    WindowStatus,
    actual_tco2e,
    budget_tco2e,
    counted_commissioning,
    coverage,
    roadmap_status,
    site_roadmap,
    trajectory,
    window_status,
    year_end_forecast,
)

__all__ = [
    "Forecast",
    "RoadmapStatus",
    "SiteRoadmap",
    "WindowStatus",
    "actual_tco2e",
    "budget_tco2e",
    "counted_commissioning",
    "coverage",
    "roadmap_status",
    "site_roadmap",
    "trajectory",
    "window_status",
    "year_end_forecast",
]
