"""A Kubernetes cluster in a box: pods in network namespaces, cluster DNS, Indexed Jobs."""
