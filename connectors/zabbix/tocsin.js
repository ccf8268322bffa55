// tocsin webhook media type for Zabbix 6.0: posts a trigger's problem, its updates
// (acknowledged, commented, severity changed, closed) and its recovery to the tocsin
// gateway's /v1/zabbix. tocsin maps the event; this script only gathers it.
// Any answer but 2xx throws, so Zabbix logs tocsin's error in the action log and
// retries as the media type's attempts say.
var Tocsin = {
    macro: /^\{[A-Z0-9_.$]+\}$/,

    // a macro that did not expand in this kind of message arrives as its own name
    clean: function (value) {
        if (typeof value !== 'string') {
            return '';
        }
        value = value.trim();
        return Tocsin.macro.test(value) ? '' : value;
    },

    // {EVENT.DATE} and {EVENT.TIME} are yyyy.mm.dd and hh:mm:ss in the Zabbix server's
    // time zone, which is this script's local time zone too
    time: function (date, time) {
        var d = /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(Tocsin.clean(date)),
            t = /^(\d{2}):(\d{2}):(\d{2})$/.exec(Tocsin.clean(time));

        if (!d || !t) {
            return '';
        }
        return new Date(+d[1], +d[2] - 1, +d[3], +t[1], +t[2], +t[3]).toISOString();
    },

    tags: function (text) {
        var tags = [], parsed, i;

        try {
            parsed = JSON.parse(Tocsin.clean(text) || '[]');
        }
        catch (error) {
            return [];
        }
        if (!Array.isArray(parsed)) {
            return [];
        }
        for (i = 0; i < parsed.length; i++) {
            if (parsed[i] && typeof parsed[i].tag === 'string') {
                tags.push({tag: parsed[i].tag, value: String(parsed[i].value || '')});
            }
        }
        return tags;
    },

    body: function (p) {
        var c = Tocsin.clean;

        return {
            version: '1',
            instance: c(p.instance),
            zabbix_url: c(p.zabbix_url),
            event: {
                id: c(p.event_id),
                value: c(p.event_value),
                update: c(p.event_update_status),
                source: c(p.event_source),
                name: c(p.event_name),
                severity: c(p.event_severity),
                nseverity: c(p.event_nseverity),
                time: Tocsin.time(p.event_date, p.event_time),
                recovery_id: c(p.event_recovery_id),
                recovery_time: Tocsin.time(p.event_recovery_date, p.event_recovery_time),
                update_action: c(p.event_update_action),
                update_user: c(p.event_update_user),
                update_message: c(p.event_update_message),
                update_time: Tocsin.time(p.event_update_date, p.event_update_time),
                ack: c(p.event_ack),
                opdata: c(p.event_opdata),
                tags: Tocsin.tags(p.event_tags)
            },
            host: {name: c(p.host_name), host: c(p.host_host), ip: c(p.host_ip)},
            trigger: {
                id: c(p.trigger_id),
                name: c(p.trigger_name),
                description: c(p.trigger_description),
                url: c(p.trigger_url)
            }
        };
    },

    send: function (p, body) {
        var request = new HttpRequest(), response, status;

        request.addHeader('Content-Type: application/json');
        request.addHeader('Authorization: Bearer ' + p.token);
        if (Tocsin.clean(p.http_proxy)) {
            request.setProxy(p.http_proxy);
        }
        response = request.post(p.url, JSON.stringify(body));
        status = request.getStatus();
        if (status < 200 || status >= 300) {
            throw 'tocsin answered ' + status + ': ' + String(response).substring(0, 400);
        }
        return response;
    }
};

try {
    var params = JSON.parse(value), body;

    if (!Tocsin.clean(params.url)) {
        throw 'the media type parameter "url" is empty: set the gateway\'s /v1/zabbix URL';
    }
    if (!Tocsin.clean(params.token)) {
        throw 'the media type parameter "token" is empty: set a tocsin intake token';
    }
    body = Tocsin.body(params);
    Tocsin.send(params, body);
    Zabbix.log(4, '[tocsin] event ' + body.event.id + ' sent');
    return 'OK';
}
catch (error) {
    Zabbix.log(3, '[tocsin] sending failed: ' + error);
    throw 'tocsin: ' + error;
}
