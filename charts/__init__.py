"""Operations-as-code: the Grafana dashboard builder and PromQL helpers behind charts/."""
