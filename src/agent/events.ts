import { EventEmitter } from 'node:events';

/** An event the agent streams to clients (SSE) and writes to its log. */
export interface AgentEvent {
  type: string;
  at: string;
  [k: string]: unknown;
}

/** In-process event bus; the SSE route subscribes to it. */
export class EventBus {
  private readonly ee = new EventEmitter();
  constructor() { this.ee.setMaxListeners(1000); }
  emit(type: string, data: Record<string, unknown>): void {
    const ev: AgentEvent = { type, at: new Date().toISOString(), ...data };
    this.ee.emit('event', ev);
  }
  subscribe(fn: (e: AgentEvent) => void): () => void {
    this.ee.on('event', fn);
    return () => this.ee.off('event', fn);
  }
}
