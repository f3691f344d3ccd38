import { type Tracer, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { installContextManager } from './context.js';

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT; tracing records and exports spans only when it is set. */
  endpoint: string | undefined;
  serviceName: string;
  serviceVersion: string;
}

/**
 * OpenTelemetry for one controller. With no OTLP endpoint it records nothing (a no-op tracer,
 * near-zero cost) but still passes incoming trace contexts on to jobs. The provider is this
 * controller's own, not the global one, so several controllers in one process do not clash.
 */
export class Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  private readonly provider: BasicTracerProvider | null;

  constructor(opts: TracingOptions) {
    installContextManager();
    this.enabled = Boolean(opts.endpoint);
    if (opts.endpoint) {
      // The exporter reads OTEL_EXPORTER_OTLP_* itself (endpoint, headers, timeout): the
      // standard variables behave as in any OpenTelemetry SDK.
      this.provider = new BasicTracerProvider({
        resource: resourceFromAttributes({
          'service.name': opts.serviceName,
          'service.version': opts.serviceVersion,
        }),
        spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 1000 })],
      });
      this.tracer = this.provider.getTracer('runplane', opts.serviceVersion);
    } else {
      this.provider = null;
      this.tracer = trace.getTracer('runplane-noop');
    }
  }

  /** Exports what is buffered (on shutdown). */
  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}
