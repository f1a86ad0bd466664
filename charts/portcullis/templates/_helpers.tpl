{{/*
Name of the chart, overridable.
*/}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name when it contains the chart name,
else release-chart. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "portcullis.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: ingress-controller
app.kubernetes.io/part-of: portcullis
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels selecting this release's pods.
*/}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount the pods run as.
*/}}
{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest, else repository:tag (tag defaults to appVersion).
*/}}
{{- define "portcullis.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the proxy Service.
*/}}
{{- define "portcullis.proxyServiceName" -}}
{{- printf "%s-proxy" (include "portcullis.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the admin Service.
*/}}
{{- define "portcullis.adminServiceName" -}}
{{- printf "%s-admin" (include "portcullis.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
--publish-service value: the publishService value, else this chart's proxy Service.
*/}}
{{- define "portcullis.publishService" -}}
{{- if .Values.publishService }}
{{- .Values.publishService }}
{{- else }}
{{- printf "%s/%s" .Release.Namespace (include "portcullis.proxyServiceName" .) }}
{{- end }}
{{- end }}

{{/*
Watched namespaces, without duplicates, in the order given.
*/}}
{{- define "portcullis.watchNamespaces" -}}
{{- .Values.watchNamespaces | uniq | join "," }}
{{- end }}

{{/*
API permissions on namespaced resources: read what translation needs, write
status subresources and Events. Granted by the ClusterRole (all namespaces)
or by a Role in each watched namespace.
*/}}
{{- define "portcullis.namespacedRules" -}}
- apiGroups: [""]
  resources: [services, secrets]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses/status]
  verbs: [get, patch, update]
- apiGroups: [configuration.konghq.com]
  resources: [kongconsumers, kongplugins]
  verbs: [get, list, watch]
- apiGroups: [configuration.konghq.com]
  resources: [kongconsumers/status, kongplugins/status]
  verbs: [get, patch, update]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/*
API permissions on cluster-scoped resources: always in the ClusterRole.
*/}}
{{- define "portcullis.clusterRules" -}}
- apiGroups: [networking.k8s.io]
  resources: [ingressclasses]
  verbs: [get, list, watch]
- apiGroups: [configuration.konghq.com]
  resources: [kongclusterplugins]
  verbs: [get, list, watch]
- apiGroups: [configuration.konghq.com]
  resources: [kongclusterplugins/status]
  verbs: [get, patch, update]
{{- end }}
