"""A small typed builder for fraudmesh's Grafana dashboards (``python -m charts.grafana``).

Each service contributes one module under ``charts.grafana.services`` that defines ``SECTION``;
``dashboards.build_all`` turns the sections into the overview, per-service and fraud dashboards.
"""
