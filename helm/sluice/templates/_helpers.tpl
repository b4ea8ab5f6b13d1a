{{/* Chart name, 63 characters at most (a DNS label). */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: the release name, plus the chart name unless the release name has it. */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; call with (dict "ctx" $ "component" "controller"). */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" .ctx }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end -}}

{{/* Selector labels: stable across upgrades, so never the chart version. */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "sluice.etcdName" -}}
{{- printf "%s-etcd" (include "sluice.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
etcd client URLs for --etcd-endpoints: every bundled member by its stable name (the client
fails over between them), or the external ones.
*/}}
{{- define "sluice.etcdEndpoints" -}}
{{- if .Values.etcd.enabled -}}
{{- $name := include "sluice.etcdName" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $urls = append $urls (printf "http://%s-%d.%s:2379" $name $i $name) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- $external := required "etcd.externalEndpoints: give at least one etcd URL, or set etcd.enabled=true" (join "," .Values.etcd.externalEndpoints) -}}
{{- $external -}}
{{- end -}}
{{- end -}}

{{/* Where agents reach the controllers' gRPC port (the Service spreads them over replicas). */}}
{{- define "sluice.controllerAddress" -}}
{{- printf "%s-controller.%s.svc:%d" (include "sluice.fullname" .) .Release.Namespace (int .Values.controller.grpcPort) -}}
{{- end -}}

{{- define "sluice.tlsSecret" -}}
{{- required "tls.existingSecret: name the Secret with tls.crt, tls.key and ca.crt, or set tls.enabled=false" .Values.tls.existingSecret -}}
{{- end -}}

{{/* Preferred anti-affinity spreading one component's pods over nodes. */}}
{{- define "sluice.spread" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "sluice.selectorLabels" . | nindent 12 }}
{{- end -}}

{{/* Prometheus scrape annotations for a pod whose /metrics is on port .port. */}}
{{- define "sluice.metricsAnnotations" -}}
{{- if .ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- if .https }}
prometheus.io/scheme: https
{{- end }}
{{- end }}
{{- end -}}
