{{/* Object names: the release name (or fullnameOverride). */}}
{{- define "alert-router.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels. name stays alert-router: the ServiceMonitor's jobLabel makes it the job
     name the alerting rules expect (job="alert-router"). */}}
{{- define "alert-router.selectorLabels" -}}
app.kubernetes.io/name: alert-router
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "alert-router.labels" -}}
{{ include "alert-router.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "alert-router.mode" -}}
{{- if not (has .Values.mode (list "single" "ha")) -}}
{{- fail (printf "mode must be single or ha, not %q" .Values.mode) -}}
{{- end -}}
{{- .Values.mode -}}
{{- end -}}
