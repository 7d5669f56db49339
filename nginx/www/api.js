// REST calls to the messenger API (protocol 2 shapes, ?v=2) and uploads with progress.

/** An answer that was not 2xx: the status and the server's {"error"} text. */
export class ApiError extends Error {
  constructor(status, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export class Api {
  constructor() {
    this.token = null;
    /** Called when any request answers 401 with a token set (the session is over). */
    this.onUnauthorized = null;
  }

  async request(method, path, body) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
    } catch (error) {
      throw new ApiError(0, 'cannot reach the server');
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!response.ok) {
      const message = (data && typeof data.error === 'string') ? data.error : `HTTP ${response.status}`;
      if (response.status === 401 && this.token && this.onUnauthorized && path !== '/login') {
        this.onUnauthorized();
      }
      throw new ApiError(response.status, message, response.headers.get('Retry-After'));
    }
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body ?? {}); }
  patch(path, body) { return this.request('PATCH', path, body); }
  put(path) { return this.request('PUT', path); }
  del(path) { return this.request('DELETE', path); }

  /** POST /login; `password` only when given (accounts that have one need it). */
  login(username, password) {
    const body = { username };
    if (password) body.password = password;
    return this.post('/login', body);
  }

  /**
   * Every chat, newest activity first, in pages of 200 (`limit`, `before_chat_id`); a server
   * that does not page (400 for `limit`) answers the whole list at once.
   */
  async chats() {
    const size = 200;
    let page;
    try {
      page = await this.get(`/chats?v=2&limit=${size}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) return this.get('/chats?v=2');
      throw error;
    }
    const all = [...page];
    const seen = new Set(all.map((c) => c.id));
    while (page.length === size) {
      page = await this.get(`/chats?v=2&limit=${size}&before_chat_id=${page[page.length - 1].id}`);
      const fresh = page.filter((c) => !seen.has(c.id));
      if (fresh.length === 0) break;
      for (const c of fresh) { seen.add(c.id); all.push(c); }
    }
    return all;
  }
  chat(id) { return this.get(`/chats/${id}?v=2`); }
  user(id) { return this.get(`/users/${id}`); }
  searchUsers(q) { return this.get(`/users?username=${encodeURIComponent(q)}`); }

  messages(chatId, { beforeId = null, afterId = null, limit = 50 } = {}) {
    const q = new URLSearchParams({ v: '2', limit: String(limit) });
    if (beforeId != null) q.set('before_id', String(beforeId));
    if (afterId != null) q.set('after_id', String(afterId));
    return this.get(`/chats/${chatId}/messages?${q}`);
  }

  editMessage(chatId, id, content) { return this.patch(`/chats/${chatId}/messages/${id}?v=2`, { content }); }
  deleteMessage(chatId, id) { return this.del(`/chats/${chatId}/messages/${id}`); }
  react(chatId, id, emoji, on) {
    const path = `/chats/${chatId}/messages/${id}/reactions/${encodeURIComponent(emoji)}`;
    return on ? this.put(path) : this.del(path);
  }
  receipts(chatId) { return this.get(`/chats/${chatId}/receipts`); }
  markRead(chatId, messageId) { return this.post(`/chats/${chatId}/read`, { message_id: messageId }); }
  members(chatId) { return this.get(`/chats/${chatId}/members`); }
  addMembers(chatId, userIds) { return this.post(`/chats/${chatId}/members`, { user_ids: userIds }); }
  removeMember(chatId, userId) { return this.del(`/chats/${chatId}/members/${userId}`); }
  rename(chatId, name) { return this.patch(`/chats/${chatId}?v=2`, { name }); }
  createGroup(name, participants) { return this.post('/chats?v=2', { name, participants }); }
  initiate(targetId) { return this.post('/chats/initiate', { target_id: targetId }); }
  presence(ids) { return this.get(`/presence?user_ids=${ids.join(',')}`); }

  search(q, { chatId = null, beforeId = null, limit = 20 } = {}) {
    const p = new URLSearchParams({ q, limit: String(limit) });
    if (chatId != null) p.set('chat_id', String(chatId));
    if (beforeId != null) p.set('before_id', String(beforeId));
    return this.get(`/search?${p}`);
  }

  logout() { return this.post('/logout', {}); }
  logoutAll() { return this.post('/logout/all', {}); }
  updateProfile(fields) { return this.patch('/users/me', fields); }
  setPassword(password, currentPassword) {
    const body = { password };
    if (currentPassword) body.current_password = currentPassword;
    return this.request('PUT', '/users/me/password', body);
  }

  /**
   * POST /upload?v=2 with the file as multipart field `file`. XMLHttpRequest, because fetch
   * reports no upload progress. Resolves to the file object; `onProgress(fraction)`.
   * Returns {promise, abort}.
   */
  upload(file, onProgress) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise((resolve, reject) => {
      xhr.open('POST', '/upload?v=2');
      if (this.token) xhr.setRequestHeader('Authorization', `Bearer ${this.token}`);
      xhr.responseType = 'text';
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch { data = null; }
        if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
        else reject(new ApiError(xhr.status, (data && data.error) || `upload failed (HTTP ${xhr.status})`));
      };
      xhr.onerror = () => reject(new ApiError(0, 'upload failed: cannot reach the server'));
      xhr.onabort = () => reject(new ApiError(0, 'upload cancelled'));
      const form = new FormData();
      form.append('file', file, file.name);
      xhr.send(form);
    });
    return { promise, abort: () => xhr.abort() };
  }
}
