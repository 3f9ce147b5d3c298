"""The sandbox cluster: one local process serving the Kubernetes API and the BCS Mesos API
over a shared runtime of real pods (HTTP listeners) and services (TCP proxies)."""
