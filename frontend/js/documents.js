// The documents panel: upload files (straight to S3 through the presigned POST that
// POST /documents grants), follow their ingestion (queued → processing → indexed, or failed with
// its reason), and delete them.

import { announce } from "./announce.js";
import { apiJson } from "./api.js";
import { documentName, documentPath, element, plural } from "./format.js";

const BUSY_POLL_MS = 1500;
const IDLE_POLL_MS = 15_000;
const CONFIRM_MS = 5000;
const PENDING = new Set(["queued", "processing", "deleting"]);

const STATUS_TEXT = {
  uploading: (d) => `Uploading ${d.progress}%`,
  uploaded: () => "Uploaded · waiting to be indexed",
  upload_failed: () => "Upload failed",
  queued: (d) => (d.progress_percent ? `Queued · ${d.progress_percent}% indexed` : "Queued"),
  processing: (d) => `Indexing ${d.progress_percent || 0}%`,
  indexed: (d) => `Indexed · ${plural(d.chunks, "passage")}`,
  failed: () => "Failed",
  deleting: () => "Deleting…",
};

export class DocumentsPanel {
  // `onOpen`: called as the panel opens (the page closes its other panel).
  constructor(root, toggle, { onOpen = () => {} } = {}) {
    this.root = root;
    this.toggle = toggle;
    this.onOpen = onOpen;
    this.documents = [];
    // document_id → {name, status, progress, reason, before}; `before` is the record's
    // updated_at when the upload began: the upload's row stays until the registry moves on.
    this.uploads = new Map();
    this.statuses = new Map(); // document_id → last status seen, to announce what changed
    this.items = new Map(); // document_id → its row
    this.pollTimer = null;
    this.refreshing = null;
    this.loadError = "";
    this.actionError = "";
    const input = root.querySelector(".file-input");
    input.addEventListener("change", () => {
      this.upload([...input.files]);
      input.value = "";
    });
    const zone = root.querySelector(".drop-zone");
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      this.upload([...event.dataTransfer.files]);
    });
    root.querySelector(".close").addEventListener("click", () => this.close());
    root.addEventListener("keydown", (event) => { if (event.key === "Escape") this.close(); });
    toggle.addEventListener("click", () => (root.hidden ? this.open() : this.close()));
  }

  open() {
    this.onOpen();
    this.root.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    document.body.classList.add("panel-open");
    this.root.querySelector(".panel-title").focus();
    this.refresh();
  }

  close({ returnFocus = true } = {}) {
    if (this.root.hidden) return;
    this.root.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
    document.body.classList.remove("panel-open");
    if (returnFocus) this.toggle.focus();
  }

  // One list request at a time; a call while one runs is answered by it.
  refresh() {
    this.refreshing ??= this.load().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  async load() {
    clearTimeout(this.pollTimer);
    try {
      this.documents = (await apiJson("/documents")).data;
      this.loadError = "";
    } catch (error) {
      this.loadError = error.kind === "auth"
        ? "Enter a valid API key (or sign in) to see your documents."
        : `The document list cannot be loaded right now (${error.message}).`;
    }
    this.announceChanges();
    this.render();
    const busy = [...this.uploads.values()].some((u) => u.status !== "upload_failed")
      || this.documents.some((d) => PENDING.has(d.status));
    clearTimeout(this.pollTimer);
    if (busy || !this.root.hidden) this.pollTimer = setTimeout(() => this.refresh(), busy ? BUSY_POLL_MS : IDLE_POLL_MS);
  }

  async upload(files) {
    if (!files.length) return;
    if (this.root.hidden) this.open();
    await Promise.all(files.map((file) => this.uploadOne(file)));
    this.refresh();
  }

  async uploadOne(file) {
    let id = `local-${crypto.randomUUID()}`;
    const entry = { name: file.name, status: "uploading", progress: 0, reason: null, before: null };
    this.uploads.set(id, entry);
    this.render();
    try {
      const grant = await apiJson("/documents", { method: "POST", body: { path: file.name } });
      this.uploads.delete(id);
      id = grant.document_id;
      entry.before = this.documents.find((d) => d.document_id === id)?.updated_at ?? null;
      this.uploads.set(id, entry);
      if (file.size > grant.max_bytes) {
        throw new Error(`${file.name} is ${megabytes(file.size)}; the most a document may be is ${megabytes(grant.max_bytes)}.`);
      }
      if (file.size === 0) throw new Error(`${file.name} is empty.`);
      await postForm(grant.upload, file, (percent) => {
        entry.progress = percent;
        this.render();
      });
      entry.status = "uploaded";
      announce(`${file.name} uploaded; indexing starts shortly.`);
    } catch (error) {
      entry.status = "upload_failed";
      entry.reason = error.message;
      announce(`${file.name} was not uploaded: ${error.message}`);
    }
    this.render();
  }

  async remove(document, button) {
    const name = documentName(document);
    if (button.dataset.confirm !== "yes") {
      const disarm = () => {
        button.dataset.confirm = "";
        button.textContent = "Delete";
        button.setAttribute("aria-label", `Delete ${name}`);
      };
      button.dataset.confirm = "yes";
      button.textContent = "Confirm delete";
      button.setAttribute("aria-label", `Confirm: delete ${name}`);
      setTimeout(() => { if (button.dataset.confirm === "yes") disarm(); }, CONFIRM_MS);
      return;
    }
    button.disabled = true;
    try {
      await apiJson(`/documents/${encodeURIComponent(document.document_id)}`, { method: "DELETE" });
      this.actionError = "";
      this.root.querySelector(".panel-title").focus(); // the button goes with the row
      announce(`Deleting ${name}.`);
    } catch (error) {
      this.actionError = `${name} was not deleted: ${error.message}`;
      announce(this.actionError);
    } finally {
      button.disabled = false;
      button.dataset.confirm = "";
      button.textContent = "Delete";
      button.setAttribute("aria-label", `Delete ${name}`);
    }
    this.refresh();
  }

  // An upload is shown until the registry has a record of it newer than the one it replaces.
  rows() {
    const rows = this.documents.map((d) => ({ ...d }));
    for (const [id, upload] of this.uploads) {
      const known = rows.find((d) => d.document_id === id);
      if (known && known.updated_at !== upload.before && upload.status === "uploaded") {
        this.uploads.delete(id);
        continue;
      }
      const row = { document_id: id, title: "", source_key: null, ...upload, upload: true };
      if (known) rows.splice(rows.indexOf(known), 1, { ...known, ...row });
      else rows.unshift(row);
    }
    return rows;
  }

  render() {
    const rows = this.rows();
    const list = this.root.querySelector(".document-list");
    const shown = new Set();
    rows.forEach((document, n) => {
      let item = this.items.get(document.document_id);
      if (!item) this.items.set(document.document_id, (item = this.createRow()));
      this.fillRow(item, document);
      if (list.children[n] !== item) list.insertBefore(item, list.children[n] || null);
      shown.add(document.document_id);
    });
    for (const [id, item] of this.items) {
      if (shown.has(id)) continue;
      item.remove();
      this.items.delete(id);
    }
    const error = this.actionError || this.loadError;
    this.root.querySelector(".documents-empty").hidden = rows.length > 0 || Boolean(error);
    const shownError = this.root.querySelector(".documents-error");
    shownError.textContent = error;
    shownError.hidden = !error;
    const working = rows.filter((d) => PENDING.has(d.status) || d.status === "uploading" || d.status === "uploaded").length;
    this.toggle.querySelector(".count").textContent = working ? `${working} indexing` : String(this.documents.length);
  }

  // A row keeps its elements across polls (a focused Delete button stays focused and armed).
  createRow() {
    const item = element("li", "document");
    const head = element("div", "document-head");
    head.append(element("span", "document-name"), element("span", "status"));
    const bar = element("progress", "progress");
    bar.max = 100;
    const remove = element("button", "delete", "Delete");
    remove.type = "button";
    remove.addEventListener("click", () => this.remove(item.document, remove));
    item.append(head, element("span", "document-path"), bar, element("p", "reason"), remove);
    return item;
  }

  fillRow(item, document) {
    const part = (name) => item.querySelector(`.${name}`);
    item.document = document;
    item.dataset.status = document.status;
    item.dataset.documentId = document.document_id;
    const name = document.upload ? document.name : documentName(document);
    part("document-name").textContent = name;
    part("status").textContent = STATUS_TEXT[document.status]?.(document) ?? document.status;
    const path = document.source_key ? documentPath(document.source_key) : "";
    part("document-path").textContent = path;
    part("document-path").hidden = !path || path === name;
    const bar = part("progress");
    const percent = document.status === "uploading" ? document.progress : document.progress_percent || 0;
    bar.hidden = !["uploading", "queued", "processing"].includes(document.status);
    bar.value = percent;
    bar.setAttribute("aria-label", `${name}: ${percent}%`);
    part("reason").textContent = document.reason || "";
    part("reason").hidden = !document.reason;
    const remove = part("delete");
    remove.hidden = Boolean(document.upload) || document.status === "deleting";
    if (remove.dataset.confirm !== "yes") remove.setAttribute("aria-label", `Delete ${name}`);
  }

  // Says when a document is indexed or failed: one seen changing, or one uploaded from here.
  announceChanges() {
    for (const d of this.documents) {
      const before = this.statuses.get(d.document_id);
      const followed = before !== undefined || this.uploads.has(d.document_id);
      if (followed && before !== d.status && (d.status === "indexed" || d.status === "failed")) {
        announce(d.status === "indexed" ? `${documentName(d)} is indexed.` : `${documentName(d)} failed: ${d.reason || "no reason given"}`);
      }
      this.statuses.set(d.document_id, d.status);
    }
  }
}

// The presigned POST: its fields, then the file, last, as S3 requires; progress as it uploads.
function postForm(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
    form.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", upload.url);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100));
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new Error(s3Error(request.responseText) || `storage answered ${request.status}`));
    });
    request.addEventListener("error", () => reject(new Error("the upload could not reach the storage service")));
    request.send(form);
  });
}

function s3Error(xml) {
  const message = /<Message>([^<]*)<\/Message>/.exec(xml || "");
  return message ? message[1] : "";
}

function megabytes(bytes) {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}
